// The parse-only ceiling for bench/versus.py: simdjson (Debian's
// libsimdjson-dev) parses each raw batch file, a JSON array of records, and
// the program prints how many records there were. Nothing is validated
// against a contract, converted or written, so it is a floor on the cost of
// reading the JSON, not a peer doing the consumer's job.
//
// DOM, not On-Demand: a DOM parse validates the whole document and puts every
// value on the tape, so no record is skipped unread; each object's fields are
// then walked so that the elements are really visited.
//
//     g++ -O3 -std=c++17 bench/simdjson_parse.cpp -lsimdjson -o simdjson_parse
//     simdjson_parse data/bench/versus/lake/raw/events      # or a list of files
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    // The files in a stable order: directories recursively, as the consumer lists keys.
    std::vector<std::string> files;
    for (int i = 1; i < argc; i++) {
        std::error_code ec;
        if (fs::is_directory(argv[i], ec)) {
            std::vector<std::string> found;
            for (const auto &entry : fs::recursive_directory_iterator(argv[i])) {
                if (entry.is_regular_file()) found.push_back(entry.path().string());
            }
            std::sort(found.begin(), found.end());
            files.insert(files.end(), found.begin(), found.end());
        } else {
            files.emplace_back(argv[i]);
        }
    }

    // One parser for every file: its buffers are allocated once, as a real reader would.
    simdjson::dom::parser parser;
    std::uint64_t records = 0, fields = 0;
    for (const auto &path : files) {
        simdjson::padded_string json;
        if (auto error = simdjson::padded_string::load(path).get(json)) {
            std::fprintf(stderr, "%s: %s\n", path.c_str(), simdjson::error_message(error));
            return 1;
        }
        simdjson::dom::array batch;
        if (auto error = parser.parse(json).get_array().get(batch)) {
            std::fprintf(stderr, "%s: %s\n", path.c_str(), simdjson::error_message(error));
            return 1;
        }
        for (simdjson::dom::element record : batch) {
            simdjson::dom::object object;
            if (record.get_object().get(object) == simdjson::SUCCESS) {
                for (auto field : object) fields += field.key.size() > 0;
            }
            records++;
        }
    }
    // The fields only so that the loop above cannot be optimised away.
    if (fields == 0 && records > 0) std::fprintf(stderr, "no fields in %llu records\n", (unsigned long long)records);
    std::printf("%llu\n", (unsigned long long)records);
    return 0;
}
