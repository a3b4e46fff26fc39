// The processes of the multi-process tests (tests/test_ipc.cpp):
//   - started by a supervisor with VIDSCAN_IPC_ROLE set: a decode or infer worker with the synthetic stages;
//   - `ipc_test_worker supervise VIDEOS DECODE INFER`: a supervisor running a whole synthetic job, so
//     that a test can SIGKILL the supervisor itself.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ipc/job_supervisor.h"
#include "ipc/worker.h"
#include "support/ipc_synthetic.h"

using namespace vidscan;

int main(int argc, char** argv) {
  testing::SyntheticConfig config = testing::SyntheticConfig::FromEnvironment();
  if (ipc::IsWorkerProcess()) {
    auto identity = ipc::WorkerIdentity::FromEnvironment();
    if (!identity.ok()) {
      std::fprintf(stderr, "%s\n", identity.status().ToString().c_str());
      return ipc::kWorkerExitSetupFailed;
    }
    if (identity->role == ipc::WorkerRole::kDecode) {
      testing::SyntheticProducer producer(config);
      return ipc::RunDecodeWorker(producer);
    }
    testing::SyntheticConsumer consumer(config);
    return ipc::RunInferWorker(consumer);
  }
  if (argc == 5 && std::string(argv[1]) == "supervise") {
    std::vector<uint64_t> videos;
    for (uint64_t id = 1; id <= std::strtoull(argv[2], nullptr, 10); ++id) videos.push_back(id);
    ipc::MultiProcessOptions options;
    options.tag = "supervised";
    options.decode_workers = std::atoi(argv[3]);
    options.infer_workers = std::atoi(argv[4]);
    options.worker_argv = {std::filesystem::read_symlink("/proc/self/exe").string()};
    options.worker_env = config.Environment();
    options.slots_per_decoder = 4;
    options.slot_bytes = 64 * 1024;
    auto report = ipc::RunMultiProcessJob(videos, options);
    if (!report.ok()) {
      std::fprintf(stderr, "%s\n", report.status().ToString().c_str());
      return 1;
    }
    return 0;
  }
  std::fprintf(stderr, "usage: %s supervise VIDEOS DECODE INFER (or started as a worker by a supervisor)\n", argv[0]);
  return 2;
}
