#include "process/exec_limits.hpp"

#include <gtest/gtest.h>

using process::exec_limits_problem;
using base::k_max_arg_strlen;

TEST(ExecLimits, WhatFitsPasses)
{
  EXPECT_EQ(process::exec_limits_problem({"python3", "train.py", "--lr", "0.1"}, {"PATH=/bin", "SM_HPS={}"}), "");
  // The longest string the kernel takes: MAX_ARG_STRLEN with its NUL.
  EXPECT_EQ(process::exec_limits_problem({"x", std::string(base::k_max_arg_strlen - 1, 'a')}, {}), "");
}

TEST(ExecLimits, AValueOverMaxArgStrlenNamesTheHyperparameter)
{
  const std::string problem =
      process::exec_limits_problem({"python3", "train.py", "--corpus", std::string(base::k_max_arg_strlen, 'a')}, {});
  EXPECT_NE(problem.find("hyperparameter \"corpus\""), std::string::npos) << problem;
  EXPECT_NE(problem.find("MAX_ARG_STRLEN"), std::string::npos) << problem;
}

TEST(ExecLimits, AVariableOverMaxArgStrlenIsNamed)
{
  const std::string problem =
      process::exec_limits_problem({"python3"}, {"PATH=/bin", "SM_TRAINING_ENV=" + std::string(base::k_max_arg_strlen, 'x')});
  EXPECT_EQ(problem.rfind("environment variable SM_TRAINING_ENV is ", 0), 0U) << problem;
}

TEST(ExecLimits, TheTotalOverArgMaxIsNamed)
{
  const std::vector<std::string> env(100, std::string(1000, 'v'));
  const std::string problem = process::exec_limits_problem({"python3"}, env, 50000);
  EXPECT_NE(problem.find("over the kernel's limit of 50000 bytes (ARG_MAX)"), std::string::npos) << problem;
}
