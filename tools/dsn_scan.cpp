// pli-dsn-scan: runs pli's bounce parser over files or directories of messages and prints
// one row per recipient report: file, action, status, recipient, how it was found.
#include "core/dsn/dsn.hpp"

#include <sysexits.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

namespace fs = std::filesystem;

namespace {

void scan(const fs::path& file)
{
  std::ifstream in(file, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  auto report = pli::dsn::parse_report(buf.str());
  const std::string name = file.filename().string();
  if (!report) {
    std::cout << name << "\t-\t-\t-\tnot a bounce\n";
    return;
  }
  if (report->recipients.empty()) {
    std::cout << name << "\t-\t-\t-\tno recipient\n";
  }
  for (const auto& r : report->recipients) {
    std::cout << name << '\t' << pli::dsn::action_name(r.action) << '\t'
              << (r.status.empty() ? "-" : r.status) << '\t'
              << (r.final_recipient.empty() ? "-" : r.final_recipient) << '\t'
              << (report->inferred ? "inferred from text" : "delivery-status") << '\n';
  }
}

} // namespace

int main(int argc, char** argv)
{
  if (argc < 2) {
    std::cerr << "usage: pli-dsn-scan FILE|DIR...\n";
    return EX_USAGE;
  }
  std::cout << "file\taction\tstatus\trecipient\tsource\n";
  for (int i = 1; i < argc; ++i) {
    fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(p)) {
        if (e.is_regular_file() && e.path().extension() != ".tsv") {
          files.push_back(e.path());
        }
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        scan(f);
      }
    } else if (fs::is_regular_file(p)) {
      scan(p);
    } else {
      std::cerr << "pli-dsn-scan: no file or directory " << p << "\n";
      return EX_NOINPUT;
    }
  }
  return 0;
}
