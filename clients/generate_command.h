// `stepproof generate`: runs Generate, prints each step as the server
// commits it (with a live count on a terminal, or one JSON object per event
// with --json), checks the stream as it arrives (TraceStreamCheck), and with
// an output path writes the trace file (trace_file.h) with every leaf's proof
// bundle, after waiting briefly for the global log to include the trace.
//
// Thread-safety: one call at a time per client (it writes to stdout/stderr).
#ifndef STEPPROOF_CLIENTS_GENERATE_COMMAND_H_
#define STEPPROOF_CLIENTS_GENERATE_COMMAND_H_

#include <string>

#include "absl/time/time.h"
#include "clients/service_client.h"
#include "stepproof/v1/stepproof.pb.h"

namespace stepproof::clients {

struct GenerateCommandOptions {
  v1::GenerateRequest request;
  std::string out_path;  // "" = no trace file
  // The key the stream's checkpoints must be signed by ("name+id+key" or
  // "@FILE"); "" = the key the server reports.
  std::string key_arg;
  absl::Duration wait_log = absl::Seconds(5);
  bool json = false;
};

// Returns the exit status: 0 the trace was generated, checked (and written);
// 1 the call failed, the stream ended early or did not check; 2 a bad --key.
int RunGenerateCommand(ServiceClient& client,
                       const GenerateCommandOptions& options);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_GENERATE_COMMAND_H_
