// The detectors' thresholds and weights: the keys of the `detection.detectors` section of the
// configuration file, with their defaults. docs/detection.md explains each detector; the names
// here are the configuration keys, so a user can write the section by hand from the documentation.
//
// Thread-safety: plain values, copied into each detection shard.
#pragma once

#include <cstdint>

namespace dnsmon::detect {

struct QuerierConcentrationParams {
  std::uint32_t window_days = 14;
  std::uint32_t min_events = 50;
  std::uint32_t min_active_days = 5;
  double min_top2_share = 0.95;
  std::uint32_t max_orgs_1pct = 3;
  std::uint32_t min_population = 100;
};

struct DormantReactivationParams {
  std::uint32_t min_gap_days = 14;
  std::uint32_t min_history_days = 28;
  std::uint32_t post_window_days = 14;
  std::uint32_t min_events = 10;
  std::uint32_t min_active_days = 2;
};

struct NewlyObservedParams {
  std::uint32_t warmup_days = 14;
  std::uint32_t min_events_7d = 10;
};

struct BurstParams {
  double alpha = 0.1;
  std::uint32_t min_history_days = 7;
  std::uint32_t min_count = 20;
  double min_ratio = 3.0;
  double min_z = 4.0;
  std::uint32_t level_shift_days = 7;
};

struct AccelerationParams {
  std::uint32_t min_blocks = 4;
  double ratio = 1.5;
};

struct IntermittencyParams {
  std::uint32_t min_weekdays = 10;
  double min_fano = 5.0;
};

struct BeaconWeights {
  double ts = 0.5;
  double hist = 0.25;
  double dur = 0.25;
};

struct BeaconParams {
  std::uint32_t min_events = 20;
  std::uint32_t ring = 256;  // the newest lookup times of a domain it reads (at most 256)
  BeaconWeights weights;
  double machine_score = 0.8;
  double machine_cv = 0.3;
  double human_cv = 1.0;
};

struct TunnelingParams {
  std::uint32_t min_unique_per_hour = 300;
  double min_mean_prefix_len = 24;
  double min_entropy = 3.0;
  double min_info_bytes_per_hour = 65536;
};

struct DisappearanceParams {
  std::uint32_t min_successes_7d = 10;
  std::uint32_t min_failures = 3;
  std::uint32_t persist_failures = 10;
  std::uint32_t persist_days = 2;
  bool count_timeouts = true;
};

struct SuccessorParams {
  std::uint32_t max_age_days = 30;
  std::uint32_t max_domains_per_ip = 3;
};

struct CovertPairWeights {
  double gate = 0.4;
  double reactivated = 0.2;
  double new_ = 0.1;  // the `new` key
  double accelerating = 0.15;
  double intermittent = 0.1;
  double disappeared = 0.15;
  double persisting = 0.25;
  double successor = 0.15;
};

struct CovertPairParams {
  CovertPairWeights weights;
  double medium = 0.6;
  double high = 0.8;
  std::uint32_t max_new_per_day = 5;
};

// detection.detectors
struct DetectorParams {
  QuerierConcentrationParams querier_concentration;
  DormantReactivationParams dormant_reactivation;
  NewlyObservedParams newly_observed;
  BurstParams burst;
  AccelerationParams acceleration;
  IntermittencyParams intermittency;
  BeaconParams beacon;
  TunnelingParams tunneling;
  DisappearanceParams disappearance;
  SuccessorParams successor;
  CovertPairParams covert_pair;
};

}  // namespace dnsmon::detect
