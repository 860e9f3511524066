#include "fetch/s3_download.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "env/json_value.hpp"

#include <cerrno>
#include <cstdio>
#include <curl/curl.h>
#include <fstream>
#include <memory>
#include <system_error>
#include <thread>

namespace fetch {

namespace {

// sha256("") : the payload hash of a GET or HEAD.
constexpr const char* k_empty_payload_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

void
global_init()
{
  static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)done;
}

struct CurlDeleter
{
  void
  operator()(CURL* c) const
  {
    curl_easy_cleanup(c);
  }
};
struct ListDeleter
{
  void
  operator()(curl_slist* l) const
  {
    curl_slist_free_all(l);
  }
};

std::string
url_encode_key(const std::string& key)
{
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

struct Transfer
{
  std::FILE* file = nullptr;
  std::string body; // error bodies (small)
  std::string etag;
  unsigned long long received = 0;
  unsigned long long total = 0;
  std::chrono::steady_clock::time_point last_log = std::chrono::steady_clock::now();
  const StopCheck* stop = nullptr;
  bool stopped = false;
  std::string destination; // where `file` writes
  int write_errno = 0;     // why writing there failed (a full disk): curl only says "write error"
};

size_t
on_data(char* data, size_t size, size_t count, void* user)
{
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  t->received += n;
  if (t->file != nullptr) {
    const size_t written = std::fwrite(data, 1, n, t->file);
    if (written != n && t->write_errno == 0) {
      t->write_errno = errno != 0 ? errno : EIO;
    }
    return written;
  }
  if (t->body.size() < 64 * 1024) {
    t->body.append(data, n);
  }
  return n;
}

size_t
on_header(char* data, size_t size, size_t count, void* user)
{
  auto* t = static_cast<Transfer*>(user);
  const std::string line(data, size * count);
  if (line.size() > 5 && (line.compare(0, 5, "ETag:") == 0 || line.compare(0, 5, "etag:") == 0)) {
    std::string v = line.substr(5);
    while (!v.empty() && (v.front() == ' ' || v.front() == '"')) {
      v.erase(0, 1);
    }
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == '"' || v.back() == ' ')) {
      v.pop_back();
    }
    t->etag = v;
  }
  return size * count;
}

int
on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t /*upload_total*/, curl_off_t /*upload_now*/)
{
  auto* t = static_cast<Transfer*>(user);
  if (t->stop != nullptr && *t->stop && (*t->stop)()) {
    t->stopped = true;
    return 1; // abort
  }
  // Large downloads report progress every 5 s.
  const auto time = std::chrono::steady_clock::now();
  if (total > 64 * 1024 * 1024 && time - t->last_log > std::chrono::seconds(5)) {
    t->last_log = time;
    spdlog::info("downloading the code: {} of {} MiB", now / (1024 * 1024), total / (1024 * 1024));
  }
  return 0;
}

std::string
xml_value(const std::string& body, const std::string& tag)
{
  const auto start = body.find("<" + tag + ">");
  const auto end = body.find("</" + tag + ">");
  if (start == std::string::npos || end == std::string::npos || end < start) {
    return "";
  }
  return body.substr(start + tag.size() + 2, end - start - tag.size() - 2);
}

struct Response
{
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string curl_error;
};

Response
perform(const std::string& url, const S3Settings& settings, const AwsCredentials* credentials, bool head,
        Transfer& transfer, const std::vector<std::string>& extra_headers = {})
{
  global_init();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  std::unique_ptr<curl_slist, ListDeleter> headers;
  auto add_header = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
  if (head) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  }
  const std::string sigv4 = "aws:amz:" + settings.region + ":s3";
  if (credentials != nullptr) {
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERNAME, credentials->access_key_id.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, credentials->secret_access_key.c_str());
    add_header(std::string("x-amz-content-sha256: ") + k_empty_payload_sha256);
    if (!credentials->session_token.empty()) {
      add_header("x-amz-security-token: " + credentials->session_token);
    }
  }
  for (const auto& h : extra_headers) {
    add_header(h);
  }
  if (headers) {
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  }
  Response r;
  r.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  r.curl_error = error[0] != '\0' ? error : curl_easy_strerror(r.code);
  curl_off_t length = -1;
  curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  if (length > 0) {
    transfer.total = static_cast<unsigned long long>(length);
  }
  return r;
}

bool
transient(const Response& r)
{
  if (r.code != CURLE_OK) {
    return r.code != CURLE_ABORTED_BY_CALLBACK && r.code != CURLE_WRITE_ERROR && r.code != CURLE_URL_MALFORMAT &&
           r.code != CURLE_UNSUPPORTED_PROTOCOL;
  }
  return r.status >= 500 || r.status == 429 || r.status == 408;
}

std::string
describe(const Response& r, const Transfer& t, const S3Location& loc)
{
  const std::string where = "s3://" + loc.bucket + "/" + loc.key;
  if (t.write_errno != 0) {
    return where + ": cannot write " + t.destination + ": " + std::system_category().message(t.write_errno);
  }
  if (r.code != CURLE_OK) {
    return where + ": " + r.curl_error;
  }
  std::string message = where + ": HTTP " + std::to_string(r.status);
  if (r.status == 403) {
    message += " (access denied: check the credentials and that they may read bucket \"" + loc.bucket + "\")";
  } else if (r.status == 404) {
    message += " (no such key \"" + loc.key + "\" in bucket \"" + loc.bucket + "\")";
  }
  const std::string code = xml_value(t.body, "Code");
  if (!code.empty()) {
    message += ": " + code;
    const std::string text = xml_value(t.body, "Message");
    if (!text.empty()) {
      message += " - " + text;
    }
  }
  return message;
}

template <typename Attempt>
S3Object
with_retries(const S3Settings& settings, const S3Location& location, const StopCheck& stop, Attempt attempt)
{
  auto delay = settings.first_backoff;
  for (int n = 1;; ++n) {
    Transfer transfer;
    transfer.stop = &stop;
    const Response r = attempt(transfer);
    if (transfer.stopped) {
      throw base::StagingError("download of s3://" + location.bucket + "/" + location.key + " stopped by a signal");
    }
    if (r.code == CURLE_OK && r.status >= 200 && r.status < 300) {
      return S3Object{transfer.etag, transfer.received > 0 ? transfer.received : transfer.total};
    }
    const std::string why = describe(r, transfer, location);
    if (!transient(r) || n >= settings.max_attempts) {
      throw base::StagingError("cannot download the code from " + why +
                               (n > 1 ? " (after " + std::to_string(n) + " attempts)" : ""));
    }
    spdlog::warn("{}; retrying in {} ms (attempt {} of {})", why, delay.count(), n + 1, settings.max_attempts);
    const auto until = std::chrono::steady_clock::now() + delay;
    while (std::chrono::steady_clock::now() < until) {
      if (stop && stop()) {
        throw base::StagingError("download of s3://" + location.bucket + "/" + location.key + " stopped by a signal");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    delay *= 2;
  }
}

const std::string*
non_empty(const env::EnvMap& e, const char* name)
{
  const std::string* v = e.get(name);
  return v != nullptr && !v->empty() ? v : nullptr;
}

} // namespace

std::optional<S3Location>
parse_s3_uri(const std::string& uri)
{
  if (uri.rfind("s3://", 0) != 0) {
    return std::nullopt;
  }
  const std::string rest = uri.substr(5);
  const auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size()) {
    return std::nullopt;
  }
  return S3Location{rest.substr(0, slash), rest.substr(slash + 1)};
}

S3Settings
s3_settings_from(const env::EnvMap& e, const std::string& sagemaker_region)
{
  S3Settings s;
  if (const auto* r = non_empty(e, "AWS_REGION")) {
    s.region = *r;
  } else if (!sagemaker_region.empty()) {
    s.region = sagemaker_region;
  } else if (const auto* d = non_empty(e, "AWS_DEFAULT_REGION")) {
    s.region = *d;
  } else {
    s.region = "us-east-1";
  }
  if (const auto* ep = non_empty(e, "S3_ENDPOINT_URL")) {
    s.endpoint = *ep;
  } else if (const auto* ep2 = non_empty(e, "AWS_ENDPOINT_URL_S3")) {
    s.endpoint = *ep2;
  }
  while (!s.endpoint.empty() && s.endpoint.back() == '/') {
    s.endpoint.pop_back();
  }
  return s;
}

std::string
s3_object_url(const S3Settings& settings, const S3Location& location)
{
  if (!settings.endpoint.empty()) {
    return settings.endpoint + "/" + location.bucket + "/" + url_encode_key(location.key);
  }
  return "https://" + location.bucket + ".s3." + settings.region + ".amazonaws.com/" + url_encode_key(location.key);
}

AwsCredentials
resolve_aws_credentials(const env::EnvMap& e)
{
  const auto* id = non_empty(e, "AWS_ACCESS_KEY_ID");
  const auto* secret = non_empty(e, "AWS_SECRET_ACCESS_KEY");
  if (id != nullptr && secret != nullptr) {
    const auto* token = non_empty(e, "AWS_SESSION_TOKEN");
    return AwsCredentials{*id, *secret, token != nullptr ? *token : "", "environment"};
  }
  std::string url;
  if (const auto* full = non_empty(e, "AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
    url = *full;
  } else if (const auto* relative = non_empty(e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    url = "http://169.254.170.2" + *relative;
  } else {
    throw base::StagingError("no AWS credentials to download the code from S3: set AWS_ACCESS_KEY_ID and "
                             "AWS_SECRET_ACCESS_KEY, or run where AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set");
  }
  std::vector<std::string> headers;
  if (const auto* auth = non_empty(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
    headers.push_back("Authorization: " + *auth);
  } else if (const auto* file = non_empty(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
    std::ifstream in(*file);
    std::string token;
    std::getline(in, token);
    headers.push_back("Authorization: " + token);
  }
  S3Settings settings;
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    Transfer t;
    const Response r = perform(url, settings, nullptr, false, t, headers);
    if (r.code == CURLE_OK && r.status == 200) {
      try {
        const env::Value doc = env::parse_json(t.body);
        const env::Value* key = doc.find("AccessKeyId");
        const env::Value* sec = doc.find("SecretAccessKey");
        const env::Value* tok = doc.find("Token");
        if (key != nullptr && sec != nullptr && key->is_string() && sec->is_string()) {
          return AwsCredentials{key->text(), sec->text(), tok != nullptr && tok->is_string() ? tok->text() : "", url};
        }
        last_error = "the answer has no AccessKeyId/SecretAccessKey";
      } catch (const env::JsonError& err) {
        last_error = std::string("the answer is not JSON: ") + err.what();
      }
      break;
    }
    last_error = r.code != CURLE_OK ? r.curl_error : "HTTP " + std::to_string(r.status);
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
  }
  throw base::StagingError("cannot get AWS credentials from the container credentials endpoint " + url + ": " +
                           last_error);
}

S3Object
s3_head(const S3Settings& settings, const AwsCredentials& credentials, const S3Location& location,
        const StopCheck& stop)
{
  const std::string url = s3_object_url(settings, location);
  return with_retries(settings, location, stop,
                      [&](Transfer& t) { return perform(url, settings, &credentials, true, t); });
}

S3Object
s3_download(const S3Settings& settings, const AwsCredentials& credentials, const S3Location& location,
            const std::string& destination, const StopCheck& stop)
{
  const std::string url = s3_object_url(settings, location);
  spdlog::info("downloading the code from s3://{}/{} ({})", location.bucket, location.key, url);
  return with_retries(settings, location, stop, [&](Transfer& t) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(destination.c_str(), "wb"), std::fclose);
    if (!file) {
      throw base::StagingError("cannot write " + destination + ": " + std::system_category().message(errno));
    }
    t.file = file.get();
    t.destination = destination;
    Response r = perform(url, settings, &credentials, false, t);
    // The last buffered bytes reach the disk only here: a full disk may show now.
    if (r.code == CURLE_OK && r.status >= 200 && r.status < 300 && std::fflush(file.get()) != 0) {
      t.write_errno = errno;
      r.code = CURLE_WRITE_ERROR;
    }
    if (r.code == CURLE_OK && (r.status < 200 || r.status >= 300)) {
      // The error body went to the file: read it back for the message.
      t.file = nullptr;
      (void)std::fflush(file.get()); // best effort: only the error message reads it back
      std::ifstream in(destination);
      t.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return r;
  });
}

} // namespace fetch
