// Internal to provenance/: the RETURN_IF_ERROR / ASSIGN_OR_RETURN pair.
#ifndef STEPPROOF_PROVENANCE_STATUS_MACROS_H_
#define STEPPROOF_PROVENANCE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SP_CONCAT_INNER(a, b) a##b
#define SP_CONCAT(a, b) SP_CONCAT_INNER(a, b)

#define SP_RETURN_IF_ERROR(expr)             \
  do {                                       \
    absl::Status sp_status_ = (expr);        \
    if (!sp_status_.ok()) return sp_status_; \
  } while (0)

#define SP_ASSIGN_OR_RETURN(lhs, expr) \
  SP_ASSIGN_OR_RETURN_IMPL(SP_CONCAT(sp_statusor_, __LINE__), lhs, expr)
#define SP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(*tmp)

#endif  // STEPPROOF_PROVENANCE_STATUS_MACROS_H_
