// The launcher as a library: main() only calls run().
#pragma once

namespace launcher {

// Parse, plan, execute; returns the process exit status. Every exception stops here.
int run(int argc, const char* const* argv, char** envp);

} // namespace launcher
