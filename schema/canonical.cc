#include "schema/canonical.h"

namespace aidsync {

Result<std::unique_ptr<CanonicalMessage>> CanonicalMessage::Parse(std::string_view bytes,
                                                                  const capnp::ReaderOptions& options,
                                                                  const char* what) {
  if (bytes.size() < 16 || bytes.size() % sizeof(capnp::word) != 0)
    return Status::Corruption(std::string(what) + " is not a whole Cap'n Proto message");
  std::unique_ptr<CanonicalMessage> msg(new CanonicalMessage());
  msg->words_ = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(msg->words_.begin(), bytes.data(), bytes.size());
  try {
    msg->reader_ = std::make_unique<capnp::FlatArrayMessageReader>(msg->words_, options);
    if (msg->reader_->getEnd() != msg->words_.end())
      return Status::Corruption(std::string(what) + " has trailing bytes");
    if (!msg->reader_->isCanonical())
      return Status::Corruption(std::string(what) + " is not in canonical form");
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string(what) + " is malformed: " + e.getDescription().cStr());
  }
  return msg;
}

}  // namespace aidsync
