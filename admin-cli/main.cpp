// pli: the support CLI (pli(1)). The commands are in commands/, the table
// and the dispatch in app.cpp.
#include "admin-cli/cli.hpp"

int main(int argc, char** argv)
{
  return pli::admin::run(argc, argv);
}
