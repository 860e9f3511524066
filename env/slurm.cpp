#include "env/slurm.hpp"

#include "env/config_error.hpp"

#include <algorithm>
#include <charconv>

namespace env {

namespace {

int
parse_count(std::string_view digits, const std::string& variable, const std::string& text)
{
  int value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value < 0) {
    throw ConfigError(variable, "", "is \"" + text + "\": \"" + std::string(digits) + "\" is not a whole number");
  }
  return value;
}

// "1-3,7" or "01-10": the numbers of one bracket group, as text (zero padding kept when
// the low bound is written with a leading zero, as Slurm does).
std::vector<std::string>
expand_ranges(const std::string& ranges, const std::string& variable, const std::string& text)
{
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = ranges.find(',', start);
    const std::string range = ranges.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto dash = range.find('-');
    const std::string low = range.substr(0, dash);
    const std::string high = dash == std::string::npos ? low : range.substr(dash + 1);
    const auto digits_only = [](const std::string& s) {
      return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!digits_only(low) || !digits_only(high)) {
      throw ConfigError(variable, "",
                        "is \"" + text + "\": invalid range \"" + range +
                            "\" (expected N or N-M with digits, e.g. [1-3,7])");
    }
    const int from = parse_count(low, variable, text);
    const int to = parse_count(high, variable, text);
    if (to < from) {
      throw ConfigError(variable, "",
                        "is \"" + text + "\": invalid range \"" + range + "\" (the end is below the start)");
    }
    if (static_cast<std::size_t>(to - from) >= k_max_slurm_hosts) {
      throw ConfigError(variable, "",
                        "is \"" + text + "\": range \"" + range + "\" names more than " +
                            std::to_string(k_max_slurm_hosts) + " hosts");
    }
    const std::size_t width = low.size() > 1 && low[0] == '0' ? low.size() : 0;
    for (int n = from; n <= to; ++n) {
      std::string number = std::to_string(n);
      if (number.size() < width) {
        number.insert(0, width - number.size(), '0');
      }
      out.push_back(std::move(number));
    }
    if (comma == std::string::npos) {
      return out;
    }
    start = comma + 1;
  }
}

// One host expression ("a[1-2]b[3-4]"): the product of its bracket groups, the leftmost
// varying slowest.
void
expand_expression(const std::string& expression, const std::string& variable, const std::string& text,
                  std::vector<std::string>& out)
{
  std::vector<std::string> names = {""};
  std::size_t i = 0;
  while (i < expression.size()) {
    const auto open = expression.find('[', i);
    const std::string literal = expression.substr(i, open == std::string::npos ? std::string::npos : open - i);
    if (literal.find(']') != std::string::npos) {
      throw ConfigError(variable, "", "is \"" + text + R"(": "]" without "[" in ")" + expression + "\"");
    }
    if (open == std::string::npos && i > 0) {
      // Slurm refuses text after the last bracket group ("a[1-2]-b").
      throw ConfigError(variable, "",
                        "is \"" + text + "\": text \"" + literal + R"(" after the last "]" in ")" + expression + "\"");
    }
    for (auto& n : names) {
      n += literal;
    }
    if (open == std::string::npos) {
      break;
    }
    const auto close = expression.find(']', open);
    if (close == std::string::npos) {
      throw ConfigError(variable, "", "is \"" + text + R"(": "[" without "]" in ")" + expression + "\"");
    }
    const std::vector<std::string> numbers =
        expand_ranges(expression.substr(open + 1, close - open - 1), variable, text);
    if (names.size() * numbers.size() > k_max_slurm_hosts) {
      throw ConfigError(variable, "",
                        "is \"" + text + "\": names more than " + std::to_string(k_max_slurm_hosts) + " hosts");
    }
    std::vector<std::string> product;
    product.reserve(names.size() * numbers.size());
    for (const auto& n : names) {
      for (const auto& number : numbers) {
        product.push_back(n + number);
      }
    }
    names = std::move(product);
    i = close + 1;
  }
  for (auto& n : names) {
    out.push_back(std::move(n));
  }
}

} // namespace

std::vector<std::string>
expand_hostlist(const std::string& text, const std::string& variable)
{
  std::vector<std::string> hosts;
  std::string expression;
  int depth = 0;
  const auto flush = [&] {
    if (!expression.empty()) {
      expand_expression(expression, variable, text, hosts);
      expression.clear();
    }
    if (hosts.size() > k_max_slurm_hosts) {
      throw ConfigError(variable, "",
                        "is \"" + text + "\": names more than " + std::to_string(k_max_slurm_hosts) + " hosts");
    }
  };
  for (const char c : text) {
    if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    }
    if (depth > 1) {
      throw ConfigError(variable, "", "is \"" + text + R"(": nested "[")");
    }
    // Commas inside brackets separate ranges; outside, hosts (as do blanks).
    if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n')) {
      flush();
    } else {
      expression += c;
    }
  }
  if (depth != 0) {
    throw ConfigError(variable, "", "is \"" + text + R"(": "[" without "]")");
  }
  flush();
  if (hosts.empty()) {
    throw ConfigError(variable, "", "is empty; expected Slurm's host list, e.g. algo-[1-2]");
  }
  return hosts;
}

std::vector<int>
parse_tasks_per_node(const std::string& text, const std::string& variable)
{
  std::vector<int> counts;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto paren = item.find("(x");
    int repeat = 1;
    if (paren != std::string::npos) {
      if (item.back() != ')') {
        throw ConfigError(variable, "", "is \"" + text + "\": expected COUNT or COUNT(xNODES), e.g. 2(x2)");
      }
      repeat = parse_count(std::string_view(item).substr(paren + 2, item.size() - paren - 3), variable, text);
    }
    const int count = parse_count(std::string_view(item).substr(0, paren), variable, text);
    if (repeat < 1 || static_cast<std::size_t>(repeat) > k_max_slurm_hosts ||
        counts.size() + static_cast<std::size_t>(repeat) > k_max_slurm_hosts) {
      throw ConfigError(variable, "", "is \"" + text + "\": the node count in \"" + item + "\" is out of range");
    }
    counts.insert(counts.end(), static_cast<std::size_t>(repeat), count);
    if (comma == std::string::npos) {
      return counts;
    }
    start = comma + 1;
  }
}

std::string
expand_node_pattern(const std::string& pattern, const std::string& node)
{
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'n') {
      out += node;
      ++i;
    } else if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == '%') {
      out += '%';
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

SlurmCluster
read_slurm_cluster(const EnvMap& environment)
{
  SlurmCluster cluster;
  const auto required = [&](const char* name) -> const std::string& {
    const std::string* value = environment.get(name);
    if (value == nullptr || value->empty()) {
      throw ConfigError(name, "",
                        "is not set; expected it from Slurm (run smlaunch inside an allocation: sbatch, "
                        "salloc or srun)");
    }
    return *value;
  };
  // Steps of older Slurm releases set only SLURM_NODELIST.
  const char* nodelist_name =
      environment.get("SLURM_JOB_NODELIST") == nullptr && environment.get("SLURM_NODELIST") != nullptr
          ? "SLURM_NODELIST"
          : "SLURM_JOB_NODELIST";
  const std::string& nodelist = required(nodelist_name);
  cluster.hosts = expand_hostlist(nodelist, nodelist_name);
  for (const auto& h : cluster.hosts) {
    if (h.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != std::string::npos) {
      throw ConfigError(nodelist_name, "", "names the host \"" + h + "\"; expected letters, digits, '.', '-', '_'");
    }
  }
  for (std::size_t i = 0; i < cluster.hosts.size(); ++i) {
    // Checked here, where the list comes from: the tree's resourceconfig.json does not exist yet.
    if (std::find(cluster.hosts.begin(), cluster.hosts.begin() + static_cast<std::ptrdiff_t>(i), cluster.hosts[i]) !=
        cluster.hosts.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw ConfigError(nodelist_name, "",
                        "is \"" + nodelist + "\": the host \"" + cluster.hosts[i] +
                            "\" is listed twice; expected each node once");
    }
  }
  cluster.current_host = required("SLURMD_NODENAME");
  if (std::find(cluster.hosts.begin(), cluster.hosts.end(), cluster.current_host) == cluster.hosts.end()) {
    throw ConfigError("SLURMD_NODENAME", "",
                      "is \"" + cluster.current_host + "\", not a host of " + nodelist_name + " (\"" + nodelist +
                          "\")");
  }
  if (const std::string* n = environment.get("SLURM_NTASKS_PER_NODE"); n != nullptr && !n->empty()) {
    cluster.tasks_per_node = parse_count(*n, "SLURM_NTASKS_PER_NODE", *n);
    cluster.tasks_source = "SLURM_NTASKS_PER_NODE";
  } else if (const std::string* t = environment.get("SLURM_TASKS_PER_NODE"); t != nullptr && !t->empty()) {
    const std::vector<int> counts = parse_tasks_per_node(*t, "SLURM_TASKS_PER_NODE");
    for (const int c : counts) {
      if (c != counts.front()) {
        throw ConfigError("SLURM_TASKS_PER_NODE", "",
                          "is \"" + *t +
                              "\": nodes with different task counts; mpirun gives every "
                              "host the same slots (request --ntasks-per-node, or set the "
                              "sagemaker_process_slots_per_host hyperparameter)");
      }
    }
    cluster.tasks_per_node = counts.front();
    cluster.tasks_source = "SLURM_TASKS_PER_NODE";
  }
  if (cluster.tasks_per_node && *cluster.tasks_per_node < 1) {
    cluster.tasks_per_node.reset();
  }
  if (const std::string* g = environment.get("SLURM_GPUS_ON_NODE"); g != nullptr && !g->empty()) {
    cluster.gpus_on_node = parse_count(*g, "SLURM_GPUS_ON_NODE", *g);
  }
  return cluster;
}

Value
slurm_resource_config(const SlurmCluster& cluster, const std::string& instance_type,
                      const std::string& network_interface)
{
  Value hosts = Value::array();
  for (const auto& h : cluster.hosts) {
    hosts.items().push_back(Value::string(h));
  }
  // The keys and order of the file SageMaker writes for a homogeneous cluster.
  Value group = Value::object();
  group.set("instance_group_name", Value::string("homogeneousCluster"));
  group.set("instance_type", Value::string(instance_type));
  group.set("hosts", hosts);
  Value groups = Value::array();
  groups.items().push_back(std::move(group));
  Value rc = Value::object();
  rc.set("current_host", Value::string(cluster.current_host));
  rc.set("current_instance_type", Value::string(instance_type));
  rc.set("current_group_name", Value::string("homogeneousCluster"));
  rc.set("hosts", std::move(hosts));
  rc.set("instance_groups", std::move(groups));
  rc.set("network_interface_name", Value::string(network_interface));
  return rc;
}

} // namespace env
