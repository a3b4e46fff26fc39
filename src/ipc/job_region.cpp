#include "ipc/job_region.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace vidscan::ipc {
namespace {

constexpr uint32_t kJobMagic = 0x56534A42;  // "VSJB"
constexpr uint32_t kJobLayoutVersion = 1;
constexpr uint32_t kMaxWorkers = 1024;

struct JobHeader {
  uint32_t magic;
  uint32_t layout_version;
  int32_t supervisor_pid;
  uint32_t reserved;
  JobGeometry geometry;
  char prefix[128];
  alignas(64) Doorbell supervisor_bell;
};

struct MailboxHeader {
  alignas(64) Doorbell bell;
  std::atomic<uint32_t> starts{0};
};

constexpr size_t Align64(size_t n) { return (n + 63) / 64 * 64; }
constexpr size_t kJobHeaderBytes = Align64(sizeof(JobHeader));
constexpr size_t kMailboxHeaderBytes = Align64(sizeof(MailboxHeader));
const size_t kCommandRingBytes = SpscRing<ControlMessage>::BytesFor(JobRegion::kCommandCapacity);
const size_t kEventRingBytes = SpscRing<ControlMessage>::BytesFor(JobRegion::kEventCapacity);
const size_t kMailboxBytes = kMailboxHeaderBytes + kCommandRingBytes + kEventRingBytes;

}  // namespace

const char* WorkerRoleName(WorkerRole role) { return role == WorkerRole::kDecode ? "decode" : "infer"; }

void SetText(ControlMessage& message, const std::string& text) {
  size_t length = std::min(text.size(), sizeof(message.text) - 1);
  if (length < text.size()) {
    while (length > 0 && (static_cast<unsigned char>(text[length]) & 0xC0) == 0x80) --length;
  }
  std::memset(message.text, 0, sizeof(message.text));
  std::memcpy(message.text, text.data(), length);
}

std::string TextOf(const ControlMessage& message) {
  return std::string(message.text, strnlen(message.text, sizeof(message.text)));
}

size_t JobRegion::MailboxOffset(int slot) const { return kJobHeaderBytes + kMailboxBytes * static_cast<size_t>(slot); }

Expected<JobRegion> JobRegion::Create(const std::string& prefix, const JobGeometry& geometry) {
  if (geometry.decode_workers == 0 || geometry.infer_workers == 0 ||
      geometry.decode_workers + geometry.infer_workers > kMaxWorkers) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("{} decode and {} infer workers: each needs 1 or more, {} in all at most",
                                 geometry.decode_workers, geometry.infer_workers, kMaxWorkers));
  }
  if (geometry.slots_per_decoder == 0 || geometry.slot_bytes == 0 || geometry.batch_size == 0 ||
      geometry.descriptor_capacity == 0) {
    return MakeError(StatusCode::kInvalidArgument, "job geometry: slots, slot bytes, batch size and ring depth must be positive");
  }
  if (prefix.size() >= sizeof(JobHeader::prefix)) {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("job prefix '{}' is too long", prefix));
  }
  const int workers = static_cast<int>(geometry.decode_workers + geometry.infer_workers);
  JobRegion job;
  VS_ASSIGN_OR_RETURN(job.region_, ShmRegion::Create(prefix + "ctl", kJobHeaderBytes + kMailboxBytes * workers));
  auto* header = new (job.region_.data()) JobHeader();
  header->layout_version = kJobLayoutVersion;
  header->supervisor_pid = getpid();
  header->geometry = geometry;
  std::memcpy(header->prefix, prefix.data(), prefix.size());
  job.geometry_ = geometry;
  job.prefix_ = prefix;
  job.supervisor_pid_ = getpid();
  for (int slot = 0; slot < workers; ++slot) {
    std::byte* base = job.region_.data() + job.MailboxOffset(slot);
    auto* mailbox = new (base) MailboxHeader();
    VS_ASSIGN_OR_RETURN(auto commands, SpscRing<ControlMessage>::Format(base + kMailboxHeaderBytes, kCommandRingBytes,
                                                                        kCommandCapacity, &mailbox->bell,
                                                                        &header->supervisor_bell));
    VS_ASSIGN_OR_RETURN(auto events, SpscRing<ControlMessage>::Format(base + kMailboxHeaderBytes + kCommandRingBytes,
                                                                      kEventRingBytes, kEventCapacity,
                                                                      &header->supervisor_bell, &mailbox->bell));
    (void)commands;
    (void)events;
  }
  // Workers are started after this returns (fork orders it before everything they do).
  header->magic = kJobMagic;
  return job;
}

Expected<JobRegion> JobRegion::Open(const std::string& name) {
  JobRegion job;
  VS_ASSIGN_OR_RETURN(job.region_, ShmRegion::Open(name));
  if (job.region_.size() < kJobHeaderBytes) {
    return MakeError(StatusCode::kCorruptData, fmt::format("job region {}: too small", name));
  }
  const auto* header = reinterpret_cast<const JobHeader*>(job.region_.data());
  if (header->magic != kJobMagic || header->layout_version != kJobLayoutVersion) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("job region {}: not a job of this vidscan version", name));
  }
  const JobGeometry& g = header->geometry;
  const uint64_t workers = static_cast<uint64_t>(g.decode_workers) + g.infer_workers;
  if (g.decode_workers == 0 || g.infer_workers == 0 || workers > kMaxWorkers ||
      kJobHeaderBytes + kMailboxBytes * workers > job.region_.size()) {
    return MakeError(StatusCode::kCorruptData, fmt::format("job region {}: header does not describe the object", name));
  }
  job.geometry_ = g;
  job.prefix_ = std::string(header->prefix, strnlen(header->prefix, sizeof(header->prefix)));
  job.supervisor_pid_ = header->supervisor_pid;
  return job;
}

Doorbell* JobRegion::supervisor_bell() const {
  return &reinterpret_cast<JobHeader*>(region_.data())->supervisor_bell;
}

Expected<Mailbox> JobRegion::mailbox(WorkerRole role, int index) const {
  const int count = static_cast<int>(role == WorkerRole::kDecode ? geometry_.decode_workers : geometry_.infer_workers);
  if (index < 0 || index >= count) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("{} worker {} does not exist in a job of {}", WorkerRoleName(role), index, count));
  }
  const int slot = role == WorkerRole::kDecode ? index : static_cast<int>(geometry_.decode_workers) + index;
  std::byte* base = region_.data() + MailboxOffset(slot);
  auto* header = reinterpret_cast<MailboxHeader*>(base);
  Mailbox mailbox;
  mailbox.bell = &header->bell;
  mailbox.starts = &header->starts;
  VS_ASSIGN_OR_RETURN(mailbox.commands, SpscRing<ControlMessage>::Attach(base + kMailboxHeaderBytes, kCommandRingBytes,
                                                                         &header->bell, supervisor_bell()));
  VS_ASSIGN_OR_RETURN(mailbox.events,
                      SpscRing<ControlMessage>::Attach(base + kMailboxHeaderBytes + kCommandRingBytes, kEventRingBytes,
                                                       supervisor_bell(), &header->bell));
  return mailbox;
}

std::string JobRegion::ChannelName(int decoder, uint32_t generation) const {
  return fmt::format("{}d{}g{}-chan", prefix_, decoder, generation);
}

std::string JobRegion::PoolName(int decoder, uint32_t generation) const {
  return fmt::format("{}d{}g{}-pool", prefix_, decoder, generation);
}

}  // namespace vidscan::ipc
