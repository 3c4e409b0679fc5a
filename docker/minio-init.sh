#!/bin/sh
# minio-init (docker-compose.yml): creates the bucket and the pipeline's user,
# allowed to read and write that bucket and nothing else. MinIO's root account
# is used here only. Idempotent: safe on every `make start`.
#
# Environment: MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, BUCKET,
# PIPELINE_ACCESS_KEY_ID, PIPELINE_SECRET_ACCESS_KEY.
set -eu

: "${MINIO_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${BUCKET:?}"
: "${PIPELINE_ACCESS_KEY_ID:?}" "${PIPELINE_SECRET_ACCESS_KEY:?}"
if [ "$PIPELINE_ACCESS_KEY_ID" = "$MINIO_ROOT_USER" ]; then
  echo "minio-init: AWS_ACCESS_KEY_ID must differ from MINIO_ROOT_USER (the pipeline never uses the root account)" >&2
  exit 1
fi

mc alias set local "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$BUCKET"

# The ListBucket statement covers the bucket itself (HEAD, LIST); the object
# statement covers the keys in it. No s3:CreateBucket: the consumer runs
# with CREATE_BUCKET=false.
cat > /tmp/lake-pipeline-policy.json <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::$BUCKET"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::$BUCKET/*"]
    }
  ]
}
POLICY
# `policy create` replaces an existing policy of that name, so edits here apply.
mc admin policy create local lake-pipeline /tmp/lake-pipeline-policy.json
# `user add` of an existing user updates its secret key.
mc admin user add local "$PIPELINE_ACCESS_KEY_ID" "$PIPELINE_SECRET_ACCESS_KEY"
if ! out=$(mc admin policy attach local lake-pipeline --user "$PIPELINE_ACCESS_KEY_ID" 2>&1); then
  case "$out" in
    *already*) ;; # attached on an earlier start
    *) echo "$out" >&2; exit 1 ;;
  esac
fi
echo "minio-init: bucket $BUCKET and user $PIPELINE_ACCESS_KEY_ID (policy lake-pipeline) ready"
