// pli-linkd: the recipients' link pages. See linkd/server.cpp and core/linkd/app.cpp.
#include "core/daemon/options.hpp"
#include "linkd/server.hpp"

int main(int argc, char** argv)
{
  return pli::daemon::main("pli-linkd: the pages behind the links of registered mail", argc, argv,
                           pli::linkd::serve);
}
