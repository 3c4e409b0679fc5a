#!/bin/sh
# Creates the bucket and the pipeline's user, allowed to read and write that
# bucket and nothing else. Idempotent: safe on every `make start`.
set -eu
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "local/$BUCKET"
cat > /tmp/policy.json <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"], "Resource": ["arn:aws:s3:::$BUCKET"]},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"], "Resource": ["arn:aws:s3:::$BUCKET/*"]}
  ]
}
POLICY
mc admin policy create local lake-pipeline /tmp/policy.json
mc admin user add local "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
mc admin policy attach local lake-pipeline --user "$AWS_ACCESS_KEY_ID" || true
echo "bucket $BUCKET and user $AWS_ACCESS_KEY_ID ready"
