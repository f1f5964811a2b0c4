// The event-level detectors (detection spec 4.6, 4.7, 4.8): tunneling on raw queries,
// disappearance and successor_name on responses, over the state kept in CandidateEntry::events
// and the recently-dead map of the SharedState.
#include "dnsmon/detect/tables.hpp"

namespace dnsmon::detect {

void DomainState::events_on_query(BaseEntry* /*e*/, const LookupEvent& /*ev*/, Day /*day*/,
                                  std::int64_t /*logical_ns*/) noexcept {
}

void DomainState::events_on_response(BaseEntry& /*e*/, const LookupEvent& /*ev*/, Day /*day*/,
                                     std::int64_t /*logical_ns*/) noexcept {
}

}  // namespace dnsmon::detect
