#include "bench/report.h"

#include <cmath>
#include <iostream>
#include <stdexcept>

namespace aidsync::bench {

json Target(const std::string& name, double value, const std::string& op, double limit, bool timed) {
  bool met = op == "<=" ? value <= limit : op == ">=" ? value >= limit : value < limit;
  return json{{"name", name}, {"value", Round(value)}, {"op", op},
              {"limit", Round(limit)}, {"met", met}, {"timed", timed}};
}

void Report::Emit(json line) {
  // Always json::array({...}): a braced list of one object is that object to
  // some compilers (clang) and a one-element array to others (gcc).
  if (line.contains("targets") && !line["targets"].is_array())
    throw std::logic_error("aidsync-bench: the targets of " + line.value("scenario", std::string("?")) +
                           " are not an array");
  if (line.contains("targets")) {
    for (const auto& t : line["targets"]) {
      ++targets_;
      if (t["met"].get<bool>()) continue;
      missed_.push_back(line["scenario"].get<std::string>() + ": " + t["name"].get<std::string>());
      if (!t["timed"].get<bool>()) ++untimed_missed_;
    }
  }
  std::cout << line.dump() << std::endl;
}

json Report::Summary() const {
  return json{{"scenario", "summary"},
              {"targets_total", targets_},
              {"met", targets_ - static_cast<int>(missed_.size())},
              {"missed", missed_}};
}

Result<double> Fastest(int repeats, const std::function<Result<double>(int)>& run) {
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    ASSIGN_OR_RETURN(double seconds, run(r));
    if (r == 0 || seconds < best) best = seconds;
  }
  return best;
}

double Round(double value, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(value * scale) / scale;
}

}  // namespace aidsync::bench
