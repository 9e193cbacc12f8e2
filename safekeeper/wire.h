// Conversions between the safekeeper's protocol types and cambium.v1 messages,
// shared by the service and the clients.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_SAFEKEEPER_WIRE_H_
#define CAMBIUM_SAFEKEEPER_WIRE_H_

#include "cambium/v1/safekeeper_service.pb.h"
#include "google/protobuf/repeated_field.h"
#include "safekeeper/term_history.h"

namespace cambium::safekeeper {

inline void ToProto(const TermHistory& history,
                    google::protobuf::RepeatedPtrField<v1::TermSwitch>* out) {
  out->Clear();
  for (const TermSwitch& e : history.entries()) {
    v1::TermSwitch* p = out->Add();
    p->set_term(e.term);
    p->set_start_lsn(e.start.value());
  }
}

inline TermHistory HistoryFromProto(
    const google::protobuf::RepeatedPtrField<v1::TermSwitch>& entries) {
  std::vector<TermSwitch> out;
  out.reserve(entries.size());
  for (const v1::TermSwitch& e : entries) out.push_back({e.term(), Lsn(e.start_lsn())});
  return TermHistory(std::move(out));
}

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_WIRE_H_
