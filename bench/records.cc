#include "bench/records.h"

#include <array>
#include <cstdio>
#include <fstream>

namespace aidsync::bench {
namespace {

// splitmix64: cheap, well-mixed, deterministic per index and field.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

template <size_t N>
const char* Pick(const std::array<const char*, N>& choices, uint64_t h) {
  return choices[h % N];
}

constexpr std::array<const char*, 12> kSurnames = {"王", "李", "张", "刘", "陈", "杨",
                                                   "黄", "赵", "周", "吴", "徐", "孙"};
constexpr std::array<const char*, 16> kGivenNames = {"秀英", "建国", "桂兰", "志强", "春梅", "德华",
                                                     "玉珍", "海峰", "小红", "国平", "丽娟", "文军",
                                                     "淑芬", "长青", "金凤", "新民"};
constexpr std::array<const char*, 8> kTowns = {"城关镇", "白沙镇", "黄花镇", "江背镇",
                                               "福临镇", "金井镇", "高桥镇", "北山镇"};
constexpr std::array<const char*, 10> kVillages = {"新华村", "和平村", "光明村", "红星村", "胜利村",
                                                   "团结村", "石塘村", "枫树村", "双桥村", "龙泉村"};
constexpr std::array<const char*, 8> kMatters = {
    "追索劳动报酬", "工伤赔偿", "请求给付赡养费", "交通事故人身损害赔偿",
    "请求给付抚养费", "农民工讨薪", "医疗损害赔偿", "家庭暴力人身安全保护令"};
constexpr std::array<const char*, 4> kBases = {
    "《法律援助法》第三十一条第（六）项", "《法律援助法》第四十二条：申请人为农民工请求支付劳动报酬",
    "《法律援助法》第三十二条：无固定生活来源的残疾人", "经济困难标准：城乡最低生活保障对象"};

std::string Digits(uint64_t h, int count) {
  std::string out;
  for (int i = 0; i < count; ++i, h /= 10) out.push_back(static_cast<char>('0' + h % 10));
  return out;
}

std::string Date(uint64_t h, int first_year) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", first_year + static_cast<int>(h % 5),
                1 + static_cast<int>((h / 5) % 12), 1 + static_cast<int>((h / 60) % 28));
  return buf;
}

}  // namespace

const std::vector<std::string>& RecordColumns() {
  static const std::vector<std::string> columns = {"applicant_name", "id_number",     "phone",
                                                   "address",        "category",      "matter",
                                                   "income_status",  "received_at",   "status",
                                                   "decision_basis"};
  return columns;
}

std::vector<std::pair<std::string, std::string>> MakeRecord(int64_t index) {
  const uint64_t h = Mix(static_cast<uint64_t>(index));
  const uint64_t g = Mix(h);
  static const std::array<const char*, 3> categories = {"civil", "criminal", "administrative"};
  static const std::array<const char*, 3> incomes = {"subsistence", "low_income", "other"};
  static const std::array<const char*, 2> statuses = {"received", "approved"};
  std::string address = std::string("长沙县") + Pick(kTowns, h >> 8) + Pick(kVillages, h >> 16) +
                        std::to_string(1 + (g % 12)) + "组";
  std::string id_number = "430121" + Date(g >> 4, 1950).substr(0, 4) + Digits(g >> 20, 4) + Digits(g >> 36, 4);
  const auto& cols = RecordColumns();
  std::vector<std::string> values = {
      std::string(Pick(kSurnames, h)) + Pick(kGivenNames, h >> 4),
      id_number,
      "13" + Digits(g >> 8, 9),
      address,
      Pick(categories, h >> 24),
      Pick(kMatters, h >> 28),
      Pick(incomes, h >> 32),
      Date(h >> 36, 2022),
      Pick(statuses, h >> 48),
      Pick(kBases, h >> 52),
  };
  std::vector<std::pair<std::string, std::string>> record;
  record.reserve(cols.size());
  for (size_t i = 0; i < cols.size(); ++i) record.emplace_back(cols[i], std::move(values[i]));
  return record;
}

size_t RecordValueBytes(int64_t index) {
  size_t n = 0;
  for (const auto& [column, value] : MakeRecord(index)) n += value.size();
  return n;
}

int64_t TotalValueBytes(int64_t count) {
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i) total += static_cast<int64_t>(RecordValueBytes(i));
  return total;
}

std::string RecordsCheckSql() {
  std::string sum;
  for (const auto& column : RecordColumns()) sum += (sum.empty() ? "" : " + ") + ("length(CAST(" + column + " AS BLOB))");
  return "SELECT count(*), coalesce(sum(" + sum + "), 0) FROM " + std::string(kTableName);
}

Status WriteRecordsCsv(const std::string& path, int64_t first, int64_t count, const std::string& scope) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::IOError("cannot create " + path);
  out << "scope";
  for (const auto& column : RecordColumns()) out << ',' << column;
  out << '\n';
  for (int64_t i = first; i < first + count; ++i) {
    out << scope;
    // No generated value holds a quote, comma or newline; quote all the same
    // so the file stays valid CSV if the wording changes.
    for (const auto& [column, value] : MakeRecord(i)) out << ",\"" << value << '"';
    out << '\n';
  }
  out.close();
  if (!out) return Status::IOError("cannot write " + path + " (disk full?)");
  return Status::OK();
}

}  // namespace aidsync::bench
