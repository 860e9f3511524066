// Fetching the user's code from S3 (or an S3-compatible endpoint) with libcurl's AWS
// Signature V4, retrying transient failures.
#pragma once

#include "env/env_map.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace fetch {

struct S3Location
{
  std::string bucket;
  std::string key;
};

// "s3://bucket/key" -> {bucket, key}; nullopt when either part is missing.
std::optional<S3Location> parse_s3_uri(const std::string& uri);

struct AwsCredentials
{
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string source; // "environment" or the container credentials URL
};

struct S3Settings
{
  std::string region;   // AWS_REGION, sagemaker_region, AWS_DEFAULT_REGION, else us-east-1
  std::string endpoint; // S3_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 (path-style), "" for AWS
  int max_attempts = 5;
  std::chrono::milliseconds first_backoff{500};
};

// Settings from the environment and the sagemaker_region hyperparameter.
S3Settings s3_settings_from(const env::EnvMap& environment, const std::string& sagemaker_region);

// The object's URL: path-style under a custom endpoint, virtual-hosted on AWS.
std::string s3_object_url(const S3Settings& settings, const S3Location& location);

// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN], else the container
// credentials endpoint. Throws StagingError when there are none.
AwsCredentials resolve_aws_credentials(const env::EnvMap& environment);

struct S3Object
{
  std::string etag;
  unsigned long long size = 0;
};

// Returns true to abort the transfer (a stop signal arrived).
using StopCheck = std::function<bool()>;

// HEAD the object (for its ETag). Throws StagingError.
S3Object s3_head(const S3Settings& settings, const AwsCredentials& credentials, const S3Location& location,
                 const StopCheck& stop);

// Stream the object into `destination`. Throws StagingError; 403 and 404 fail at once,
// 5xx, timeouts and resets are retried with backoff.
S3Object s3_download(const S3Settings& settings, const AwsCredentials& credentials, const S3Location& location,
                     const std::string& destination, const StopCheck& stop);

} // namespace fetch
