// Network enrolment and revocation commands: invite and revoke (on the hub),
// join (on a new station). DESIGN 6; the protocol is in docs/PROTOCOL.md.
#include <atomic>
#include <csignal>
#include <iostream>
#include <random>

#include "crypto/invite.h"
#include "node/cli.h"
#include "sync/sync_session.h"
#include "sync/zmq_transport.h"

namespace aidsync::cli {
namespace {

// The identity a node made by `join` has until its certificate replaces it.
constexpr char kJoiningName[] = "待入网工作站";
constexpr char kJoiningCode[] = "joining";
constexpr char kJoiningScope[] = "joining";

struct InviteArgs {
  std::string name, code, scope, address;
  int valid_hours = 72;
};

Status RunInvite(Context& ctx, const InviteArgs& a) {
  if (a.valid_hours < 1 || a.valid_hours > 24 * 30)
    return Status::InvalidArgument("--valid-hours must be 1 to 720");
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  if (replica->identity().role != Role::kHub) return Status::Unauthorized("only the county hub makes invites");
  std::string address = a.address;
  if (address.empty()) {
    ASSIGN_OR_RETURN(std::optional<std::string> listen, replica->ListenEndpoint());
    if (!listen || listen->find("0.0.0.0") != std::string::npos || listen->find('*') != std::string::npos)
      return Status::InvalidArgument("give --address tcp://HOST:PORT: the address stations reach this hub at");
    address = *listen;
  }
  if (address.rfind("tcp://", 0) != 0 || address.rfind(':') <= 6)
    return Status::InvalidArgument("--address must be tcp://HOST:PORT");
  ASSIGN_OR_RETURN(SigningKey authority, SigningKey::Load(AuthorityKeyPath(ctx.data_dir)));
  InviteToken token;
  token.address = address;
  token.hub_key = replica->identity().key;
  token.authority = replica->identity().authority;
  ctx.env.random->Fill(token.secret.bytes.data(), token.secret.bytes.size());
  token.expires_at_ms = ctx.env.clock->NowMillis() + static_cast<int64_t>(a.valid_hours) * 3600 * 1000;
  RETURN_IF_ERROR(replica->CreateInvite({a.name, a.code, a.scope}, token.secret, token.expires_at_ms, authority));
  std::cout << EncodeInviteToken(token) << "\n";
  return Status::OK();
}

struct JoinArgs {
  std::string token;
  double timeout_s = 30;
};

// The node `join` enrols: the one in the data dir if it is not enrolled yet,
// or a new one. It is made before anything is sent, so its key is on disk
// when the hub binds the invite to it: a join cut off after the hub answered
// is simply run again, and the hub sends the same certificate.
Result<std::unique_ptr<Replica>> NodeToEnrol(Context& ctx, const InviteToken& token) {
  auto opened = ctx.OpenNode();
  if (opened.ok()) {
    const NodeIdentity& id = (*opened)->identity();
    if (id.enrolled)
      return Status::AlreadyExists("this node is already enrolled as " + id.name + " (" + id.code + ")");
    if (!(id.authority == token.authority))
      return Status::InvalidArgument("this node belongs to another county authority than the invite's");
    return opened;
  }
  if (opened.status().code() != Status::Code::kNotFound) return opened.status();
  NodeConfig config{kJoiningName, kJoiningCode, kJoiningScope, Role::kStation, token.authority};
  RETURN_IF_ERROR(Replica::Create(ctx.data_dir, config, ctx.env).status());
  return ctx.OpenNode();
}

Status RunJoin(Context& ctx, const JoinArgs& a) {
  if (a.timeout_s <= 0) return Status::InvalidArgument("--timeout must be positive");
  ASSIGN_OR_RETURN(InviteToken token, DecodeInviteToken(a.token));
  ASSIGN_OR_RETURN(auto replica, NodeToEnrol(ctx, token));
  ASSIGN_OR_RETURN(CurveClientKeys keys, CurveClientKeys::For(replica->identity_key(), token.hub_key));
  uint64_t session_id = std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32);
  JoinClient client(replica->identity_key(), token, session_id);
  zmq::context_t context;
  std::atomic<bool> stop{false};
  Status st = RunClientSession(context, token.address, keys, client,
                               std::chrono::milliseconds(static_cast<int64_t>(a.timeout_s * 1000)), stop);
  if (!st.ok()) return st.WithContext("join " + token.address);
  const EnrolledMsg& enrolled = client.enrolled();
  // The hub's certificate and the revocations first, so the node knows its
  // hub and who is shut out once it is enrolled. A revocation that does not
  // verify is counted, not fatal: the hub sends the list again at every sync.
  RETURN_IF_ERROR(replica->AddCertificate(enrolled.hub_certificate).status());
  RETURN_IF_ERROR(AbsorbRevocations(*replica, enrolled.revocations));
  RETURN_IF_ERROR(replica->InstallOwnCertificate(enrolled.certificate));
  std::cout << replica->identity().key.Hex() << "\n";
  return Status::OK();
}

struct RevokeArgs {
  std::string node_key, reason;
};

Status RunRevoke(Context& ctx, const RevokeArgs& a) {
  ASSIGN_OR_RETURN(PublicKey key, PublicKey::FromHex(a.node_key));
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  if (replica->identity().role != Role::kHub) return Status::Unauthorized("only the county hub revokes keys");
  ASSIGN_OR_RETURN(SigningKey authority, SigningKey::Load(AuthorityKeyPath(ctx.data_dir)));
  ASSIGN_OR_RETURN(Revocation revocation, replica->Revoke(key, a.reason, authority));
  ASSIGN_OR_RETURN(std::optional<Certificate> cert, replica->CertificateByKey(key));
  std::cout << "revoked " << DisplayText(cert ? cert->fields().code + " " + cert->fields().name : key.Hex())
            << "; what it signed up to the hub's last changeset in each of its "
            << revocation.fields().chains.size() << " chains stays valid\n";
  return Status::OK();
}

}  // namespace

void RegisterEnrolmentCommands(CLI::App& app, Context& ctx) {
  {
    auto [cmd, a] = AddCommand<InviteArgs>(app, ctx, "invite", "on the hub: a one-time enrolment token for a station",
                                           RunInvite);
    cmd->add_option("--name", a->name, "station name, e.g. 城关镇工作站")->required();
    cmd->add_option("--code", a->code, "station code, unique in the county")->required();
    cmd->add_option("--scope", a->scope, "station jurisdiction, e.g. 430123/05")->required();
    cmd->add_option("--address", a->address,
                    "tcp://HOST:PORT stations reach this hub at (default: where `serve --listen` last listened)");
    cmd->add_option("--valid-hours", a->valid_hours, "hours until the token expires (default 72)");
  }
  {
    auto [cmd, a] = AddCommand<JoinArgs>(app, ctx, "join",
                                         "on a new station: enrol over the network with a token from `invite`; "
                                         "prints this node's public key",
                                         RunJoin);
    cmd->add_option("TOKEN", a->token, "the token `aidsync invite` printed")->required();
    cmd->add_option("--timeout", a->timeout_s, "seconds to wait for the hub (default 30)");
  }
  {
    auto [cmd, a] = AddCommand<RevokeArgs>(app, ctx, "revoke",
                                           "on the hub: shut a node key out (a stolen or cloned workstation)",
                                           RunRevoke);
    cmd->add_option("NODEKEY", a->node_key, "the node's public key, 64 hex")->required();
    cmd->add_option("--reason", a->reason, "why, for the record (e.g. \"laptop stolen\")");
  }
}

}  // namespace aidsync::cli
