// Trust and enrolment commands: authority init, init, enroll, install-cert.
#include <unistd.h>

#include <iostream>

#include "crypto/certificate.h"
#include "node/cli.h"
#include "schema/scope.h"

namespace aidsync::cli {
namespace {

struct InitArgs {
  std::string name, code, scope, authority, authority_key;
  bool hub = false;
};

Status RunInit(Context& ctx, const InitArgs& a) {
  NodeConfig config;
  config.name = a.name;
  config.code = a.code;
  config.scope = a.scope;
  config.role = a.hub ? Role::kHub : Role::kStation;
  ASSIGN_OR_RETURN(config.authority, PublicKey::FromHex(a.authority));
  if (a.hub != !a.authority_key.empty())
    return Status::InvalidArgument("--hub and --authority-key go together: the hub holds the authority key");
  std::optional<SigningKey> authority;
  if (a.hub) {
    ASSIGN_OR_RETURN(SigningKey key, SigningKey::Load(a.authority_key));
    authority.emplace(std::move(key));
  }
  ASSIGN_OR_RETURN(PublicKey node_key,
                   Replica::Create(ctx.data_dir, config, ctx.env, authority ? &*authority : nullptr));
  std::cout << node_key.Hex() << "\n";
  return Status::OK();
}

struct EnrollArgs {
  std::string node_key, name, code, scope, out;
};

Status RunEnroll(Context& ctx, const EnrollArgs& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  if (replica->identity().role != Role::kHub)
    return Status::Unauthorized("only the county hub enrols stations");
  ASSIGN_OR_RETURN(SigningKey authority, SigningKey::Load(AuthorityKeyPath(ctx.data_dir)));
  CertificateFields fields;
  ASSIGN_OR_RETURN(fields.node_key, PublicKey::FromHex(a.node_key));
  RETURN_IF_ERROR(ValidatePublicKey(fields.node_key).WithContext("--node-key"));
  fields.name = a.name;
  fields.code = a.code;
  fields.role = Role::kStation;
  fields.scope = a.scope;
  fields.issued_at_ms = ctx.env.clock->NowMillis();
  RETURN_IF_ERROR(ValidateScope(a.scope));
  if (!ScopeContains(replica->identity().scope, a.scope))
    return Status::InvalidArgument("scope " + a.scope + " is outside the county " + replica->identity().scope);
  RETURN_IF_ERROR(replica->CheckMayEnrol(a.code, a.scope, fields.node_key, a.name));
  // Refuse an existing --out before recording anything (the final link()
  // refuses too, should one appear in between).
  if (::access(a.out.c_str(), F_OK) == 0) return Status::AlreadyExists(a.out + " already exists; choose another name");
  // The same key enrolled again as the same station (a lost file) gets the
  // certificate it has: a second, newer one would make the file already
  // installed a superseded certificate that servers refuse.
  ASSIGN_OR_RETURN(std::optional<Certificate> held, replica->CertificateByKey(fields.node_key));
  std::optional<Certificate> issued;
  if (!held) {
    ASSIGN_OR_RETURN(Certificate fresh, Certificate::Issue(fields, authority));
    issued.emplace(std::move(fresh));
  }
  const Certificate& cert = held ? *held : *issued;
  ASSIGN_OR_RETURN(std::optional<Certificate> hub, replica->CertificateByKey(replica->identity().key));
  if (!hub) return Status::Corruption("the hub's own certificate is missing from its trust store");
  // Recorded first: a certificate file never exists for an enrolment the hub
  // does not know (the code's uniqueness check depends on that record).
  RETURN_IF_ERROR(replica->RecordStation(cert));
  return WriteFileAtomically(a.out, EncodeEnrolment({cert.bytes(), hub->bytes()}));
}

}  // namespace

void RegisterTrustCommands(CLI::App& app, Context& ctx) {
  auto* authority = app.add_subcommand("authority", "the county authority key");
  authority->require_subcommand(1);
  auto* authority_init = authority->add_subcommand("init", "make the county authority key pair; prints its public key");
  auto out = std::make_shared<std::string>();
  authority_init->add_option("--out", *out, "file for the secret key (created 0600)")->required();
  authority_init->callback([&ctx, out] {
    ctx.run = [&ctx, out]() -> Status {
      SigningKey key = SigningKey::Generate(*ctx.env.random);
      RETURN_IF_ERROR(key.Save(*out));
      std::cout << key.public_key().Hex() << "\n";
      return Status::OK();
    };
  });

  auto init = std::make_shared<InitArgs>();
  auto* init_cmd = app.add_subcommand("init", "create this node; prints its public key");
  init_cmd->add_option("--name", init->name, "station name, e.g. 城关镇工作站")->required();
  init_cmd->add_option("--code", init->code, "station code, unique in the county")->required();
  init_cmd->add_option("--scope", init->scope, "jurisdiction, e.g. 430123/05")->required();
  init_cmd->add_option("--authority", init->authority, "county authority public key (64 hex)")->required();
  init_cmd->add_flag("--hub", init->hub, "this node is the county hub");
  init_cmd->add_option("--authority-key", init->authority_key, "authority secret key file (hub only)");
  init_cmd->callback([&ctx, init] { ctx.run = [&ctx, init] { return RunInit(ctx, *init); }; });

  auto enroll = std::make_shared<EnrollArgs>();
  auto* enroll_cmd = app.add_subcommand("enroll", "on the hub: issue a station's certificate offline");
  enroll_cmd->add_option("--node-key", enroll->node_key, "the station's public key (64 hex)")->required();
  enroll_cmd->add_option("--name", enroll->name, "station name")->required();
  enroll_cmd->add_option("--code", enroll->code, "station code")->required();
  enroll_cmd->add_option("--scope", enroll->scope, "station jurisdiction")->required();
  enroll_cmd->add_option("--out", enroll->out, "certificate file to write")->required();
  enroll_cmd->callback([&ctx, enroll] { ctx.run = [&ctx, enroll] { return RunEnroll(ctx, *enroll); }; });

  auto cert_file = std::make_shared<std::string>();
  auto* install = app.add_subcommand("install-cert", "on a station: install the certificate from `enroll`");
  install->add_option("CERTFILE", *cert_file, "certificate file")->required();
  install->callback([&ctx, cert_file] {
    ctx.run = [&ctx, cert_file]() -> Status {
      ASSIGN_OR_RETURN(std::string bytes, ReadSmallFile(*cert_file, 64 * 1024));
      auto enrolment = DecodeEnrolment(bytes);
      if (!enrolment.ok()) return enrolment.status().WithContext(*cert_file);
      ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
      // Check the hub's certificate before installing anything.
      auto hub = Certificate::Parse(enrolment->hub_certificate, replica->identity().authority);
      if (!hub.ok()) return hub.status().WithContext(*cert_file + " (the hub's certificate)");
      RETURN_IF_ERROR(replica->InstallOwnCertificate(enrolment->certificate).WithContext(*cert_file));
      return replica->AddCertificate(enrolment->hub_certificate).status();
    };
  });
}

}  // namespace aidsync::cli
