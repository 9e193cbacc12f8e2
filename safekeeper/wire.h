// Conversions between the safekeeper's protocol types and cambium.v1 messages,
// shared by the service and the clients: each ToProto has its *FromProto inverse
// here, so both ends of the wire read and write the same fields.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_SAFEKEEPER_WIRE_H_
#define CAMBIUM_SAFEKEEPER_WIRE_H_

#include "cambium/v1/safekeeper_service.pb.h"
#include "google/protobuf/repeated_field.h"
#include "safekeeper/acceptor.h"
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

// The vote; the caller sets `safekeeper`.
inline void ToProto(const VoteResponse& vote, v1::ElectResponse* out) {
  out->set_granted(vote.granted);
  out->set_term(vote.term);
  out->set_flush_lsn(vote.flush_lsn.value());
  out->set_commit_lsn(vote.commit_lsn.value());
  out->set_record_end_lsn(vote.record_end.value());
  ToProto(vote.history, out->mutable_term_history());
}

inline VoteResponse VoteResponseFromProto(const v1::ElectResponse& r) {
  VoteResponse vote;
  vote.granted = r.granted();
  vote.term = r.term();
  vote.flush_lsn = Lsn(r.flush_lsn());
  vote.record_end = Lsn(r.record_end_lsn());
  vote.commit_lsn = Lsn(r.commit_lsn());
  vote.history = HistoryFromProto(r.term_history());
  return vote;
}

// The request; the caller sets `proposer`.
inline void ToProto(const AppendStartRequest& start, v1::AppendStart* out) {
  out->set_term(start.term);
  ToProto(start.history, out->mutable_term_history());
  out->set_start_lsn(start.start_lsn.value());
  out->set_timeline_start_lsn(start.timeline_start.value());
}

inline AppendStartRequest AppendStartFromProto(const v1::AppendStart& s) {
  AppendStartRequest start;
  start.term = s.term();
  start.history = HistoryFromProto(s.term_history());
  start.start_lsn = Lsn(s.start_lsn());
  start.timeline_start = Lsn(s.timeline_start_lsn());
  return start;
}

// The stream token stays on the safekeeper: it is not sent.
inline void ToProto(const AppendAck& ack, v1::AppendResponse* out) {
  out->set_term(ack.term);
  out->set_flush_lsn(ack.flush_lsn.value());
  out->set_commit_lsn(ack.commit_lsn.value());
  out->set_record_end_lsn(ack.record_end.value());
}

inline AppendAck AppendAckFromProto(const v1::AppendResponse& r) {
  AppendAck ack;
  ack.term = r.term();
  ack.flush_lsn = Lsn(r.flush_lsn());
  ack.commit_lsn = Lsn(r.commit_lsn());
  ack.record_end = Lsn(r.record_end_lsn());
  return ack;
}

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_WIRE_H_
