#include "launcher/app.hpp"

int
main(int argc, char** argv, char** envp)
{
  return launcher::run(argc, argv, envp);
}
