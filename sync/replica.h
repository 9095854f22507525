// The replica: one node's SQLite store (DESIGN 3, 4, 7).
//
// All state lives in one database file, `replica.db`, in the node's data dir,
// next to the node's private key `node.key` (0600; the dir is 0700). The
// `aidsync_log` table of signed changesets (verbatim bytes) is the source of
// truth; the domain tables (`applications`, `cases`, ...) are a materialized
// view that Rebuild() recreates from the log, and readers query them with
// plain SQL. SQLite runs in WAL mode with synchronous=FULL: whatever a method
// reports as committed survives kill -9 and power loss.
//
// Several processes may open one data dir at once (`serve` next to `put`):
// every write runs in BEGIN IMMEDIATE, so sequence numbers, clock values and
// notice numbers are never issued twice. A Replica object itself is not
// thread-safe: use one per thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "crypto/certificate.h"
#include "crypto/invite.h"
#include "crypto/revocation.h"
#include "crypto/keys.h"
#include "schema/legal_aid.h"
#include "sync/chain_head.h"
#include "sync/changeset.h"
#include "sync/hybrid_clock.h"
#include "sync/merge.h"
#include "sync/packing.h"
#include "sync/peers.h"
#include "sync/sqlite.h"
#include "sync/values.h"

namespace aidsync {

class LocalTransaction;

// Where a hub keeps its copy of the county authority key.
inline std::string AuthorityKeyPath(const std::string& dir) { return dir + "/authority.key"; }

// Whether a node of `node_scope` may keep the body of a changeset it refused
// for `reason` (a stable reason key): only one signed by an enrolled author
// that its scope may see. `content` is null for bytes that did not decode.
bool MayKeepRefusedBody(const ChangesetContent* content, std::string_view reason, std::string_view node_scope);

// A notice number's year and per-year number.
struct NoticeNumber {
  int64_t year = 0;
  int64_t number = 0;
};
// "(YYYY)法援字第CODE-NNNN号", the number zero-padded to four digits.
std::string FormatNoticeNumber(int64_t year, const std::string& code, int64_t number);
// The year and number of `notice` if it reads exactly "(" four digits
// ")法援字第" `code` "-" one to six digits "号", both positive; nullopt otherwise.
std::optional<NoticeNumber> ParseNoticeNumber(const std::string& notice, const std::string& code);

// Who this node is. `enrolled` is false until a certificate is installed.
struct NodeIdentity {
  PublicKey key;
  std::string name;
  std::string code;
  std::string scope;
  Role role = Role::kStation;
  PublicKey authority;
  bool enrolled = false;
};

// What `aidsync init` is given.
struct NodeConfig {
  std::string name;
  std::string code;
  std::string scope;
  Role role = Role::kStation;
  PublicKey authority;
};

// What an invite enrols: the hub issues the certificate from this, never
// from anything the joiner sends.
struct InviteSpec {
  std::string name;
  std::string code;
  std::string scope;
};

// One row: (column, value) pairs, `id` and `scope` first, then the schema's
// columns in declaration order.
using Row = std::vector<std::pair<std::string, Value>>;

struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<Value>> rows;
};

// One version of a conflicted field.
struct ConflictVersion {
  Value value;
  std::string author;       // station name from its certificate, or the key's first hex digits
  std::string author_key;   // 64 hex
  int64_t time_ms = 0;      // the write's HLC milliseconds
  std::string changeset;    // changeset id, hex
};

// An open conflict: a field with several heads, or an edit a delete did not see.
struct Conflict {
  std::string table;
  std::string id;
  std::string column;
  bool row_deleted = false;           // the row is deleted; the losers are concurrent edits
  std::optional<ConflictVersion> winner;  // absent when the row is deleted
  std::vector<ConflictVersion> losers;
};

struct ForkRecord {
  std::string author_key;  // hex
  std::string author;      // station name
  std::string scope;
  TableClass cls = TableClass::kCase;
  uint64_t seq = 0;
};

struct RevokedRecord {
  std::string key;     // hex
  std::string name;    // station name, from its certificate
  std::string code;
  int64_t revoked_at_ms = 0;
};

struct ReplicaStatus {
  NodeIdentity node;
  int64_t own_changesets = 0;
  int64_t total_changesets = 0;
  int64_t held_changesets = 0;   // waiting for a predecessor in their chain
  int64_t conflicts_open = 0;
  std::vector<ForkRecord> forks;
  std::vector<RevokedRecord> revoked;  // every key the county revoked, by code
  bool self_revoked = false;           // this node's own key is revoked
  std::map<std::string, int64_t> rejected;  // reason -> count
  std::vector<std::string> alerts;
  std::vector<PeerRecord> peers;
};

// What ApplyRemote did with a batch.
struct ApplyReport {
  int applied = 0;      // new changesets applied (including held ones released)
  int duplicates = 0;   // already in the log
  int held = 0;         // still waiting for their chain predecessor at the end of the batch
  std::vector<Digest> held_ids;  // every changeset held on arrival in this batch
  int rejected = 0;     // refused; kept aside with a reason
  int certificates = 0; // new certificates accepted into the trust store
  std::vector<std::string> rejections;  // "reason: detail", one per refusal
};

struct OpenOptions {
  // Run PRAGMA quick_check before trusting the file (serve, status, rebuild).
  bool quick_check = false;
  bool read_only = false;
};

class Replica {
 public:
  // Creates a node in `dir` (made with mode 0700; must not already hold a
  // node): a fresh identity key in dir/node.key (0600) and an empty replica.
  // A hub node also needs `authority_key`: it enrols itself at once and keeps
  // a copy in AuthorityKeyPath(dir) (0600) to enrol stations with.
  // AlreadyExists if dir already holds a node; InvalidArgument for a bad
  // name, code or scope; IOError for the file system. Returns the node key.
  static Result<PublicKey> Create(const std::string& dir, const NodeConfig& config, const Env& env,
                                  const SigningKey* authority_key = nullptr);

  // Opens the node in `dir`. NotFound if there is none (naming `aidsync
  // init`); Unauthorized if the key file is readable by others; Corruption if
  // the database fails its integrity check.
  static Result<std::unique_ptr<Replica>> Open(const std::string& dir, const Env& env,
                                               const OpenOptions& options = {});

  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  const NodeIdentity& identity() const { return identity_; }
  const SchemaDef& schema() const { return schema_; }

  // ---- trust --------------------------------------------------------------
  // Installs this node's own certificate (from `aidsync enroll`). Fails with
  // BadSignature/Unauthorized if it is not signed by this node's authority or
  // names another key, and InvalidArgument, changing nothing, if this node
  // holds a different certificate for its key that is not older (servers
  // refuse a superseded certificate); on success the node's name, code, scope
  // and role are those of the certificate.
  Status InstallOwnCertificate(std::string_view cert_bytes);
  // Adds a certificate to the trust store after verifying it against the
  // authority, unless the store holds a newer one for its key (later
  // issue time; of two in one millisecond, the smaller bytes). Returns true
  // if it was new and kept.
  Result<bool> AddCertificate(std::string_view cert_bytes);
  // On the hub: records an enrolled node — its `stations` row (code, name,
  // role, public key, certificate; one row per station code, at the hub's
  // scope so it flows to every node) and its trust-store entry.
  Status RecordStation(const Certificate& cert);
  // The trusted certificate of the node with station code `code`, if any:
  // the newest of a key that is not revoked, else (every key of the code
  // revoked) the newest of a revoked key; callers that hand a node data
  // check RevocationOf.
  Result<std::optional<Certificate>> CertificateByCode(const std::string& code);
  // Whether station `code` may be enrolled in `scope` as `name` (to `key`,
  // if known yet): the code is free, or held by a revoked key in the same
  // scope (the genuine machine re-enrols under its code with a new key; its
  // notice counter then catches up from the old key's case rows, which reach
  // it — it should sync before it writes cases), and `key` is not revoked
  // and, if enrolled already, was enrolled as exactly this station (code,
  // scope, name, role station): a live key is never given a second, different
  // certificate, since an older one would still carry its old rights.
  // `scope` / `name` absent: not compared (callers issuing a certificate pass
  // both). AlreadyExists / InvalidArgument / Unauthorized naming the problem
  // otherwise. Once this passes, CertificateByKey(key), if any, is the
  // identical enrolment, to be handed out again rather than issued anew.
  Status CheckMayEnrol(const std::string& code, const std::optional<std::string>& scope,
                       const std::optional<PublicKey>& key, const std::optional<std::string>& name = std::nullopt);
  // The trusted certificate of the county hub (role hub), if any.
  Result<std::optional<Certificate>> HubCertificate();
  // The trusted certificate of `key`, if any: the newest (by issue time)
  // this node has seen, since the trust store keeps one per key. A node's
  // rights are those of this certificate, whatever older one it presents.
  Result<std::optional<Certificate>> CertificateByKey(const PublicKey& key);

  // ---- revocation (replica_revocations.cc) ----------------------------------
  // Verifies a revocation against the authority and stores it: from now on
  // the key's changesets past its chain limits are refused, and any this node
  // applied earlier leave the log for the rejected store (the tables are
  // rebuilt without them). Runs inside the caller's write transaction if
  // there is one, else in its own. Returns true if it was new. Corruption /
  // BadSignature / Unauthorized for a revocation that does not verify.
  Result<bool> AddRevocation(std::string_view bytes);
  // The stored revocation of `key`, if any.
  Result<std::optional<Revocation>> RevocationOf(const PublicKey& key);
  // Every revoked node, by station code (for status).
  Result<std::vector<RevokedRecord>> RevokedNodes();
  // Whether a connection's Curve key belongs to a revoked node (for ZAP).
  Result<bool> IsRevokedCurveKey(std::string_view curve_key);
  // Every stored revocation (signed bytes), ordered by id.
  Result<std::vector<std::string>> Revocations();
  // Digest of the revocation ids this node holds, announced in hello so two
  // nodes that hold different lists exchange them first.
  Result<Digest> RevocationsDigest();
  // On the hub: revokes `key`, keeping valid what the hub holds of each of
  // its chains. Unauthorized on a station; NotFound for a key never
  // enrolled; AlreadyExists if already revoked.
  Result<Revocation> Revoke(const PublicKey& key, const std::string& reason, const SigningKey& authority);

  // ---- network enrolment (replica_invites.cc) -------------------------------
  // On the hub: stores an invite for `spec` under InviteId(secret), valid
  // until expires_at_ms. InvalidArgument for bad fields or a scope outside
  // the county; AlreadyExists for a station code already enrolled.
  Status CreateInvite(const InviteSpec& spec, const InviteSecret& secret, int64_t expires_at_ms,
                      const SigningKey& authority);
  // On the hub: consumes the invite of `secret` for `node_key` in one
  // transaction, issuing and recording the station's certificate. The same
  // key redeeming again gets its certificate again (a lost reply); any other
  // use fails with *reason set to a stable key ("invite_unknown",
  // "invite_used", "invite_expired", "invite_refused") and changes nothing;
  // *reason is nullptr for a failure of this node's store. The authority key
  // is loaded only once the invite is known to exist, so guessing secrets
  // costs the hub one indexed read.
  Result<Certificate> RedeemInvite(const InviteSecret& secret, const PublicKey& node_key,
                                   const std::function<Result<SigningKey>()>& load_authority, const char** reason);

  // The endpoint `serve --listen` last bound (stations reach the hub there;
  // `invite` puts it in tokens by default), if any.
  Status SaveListenEndpoint(const std::string& endpoint);
  Result<std::optional<std::string>> ListenEndpoint();

  // ---- local writes --------------------------------------------------------
  // Starts a local transaction (BEGIN IMMEDIATE). Unauthorized if this node
  // has no certificate yet; Busy if another process holds the write lock
  // longer than the busy timeout.
  Result<std::unique_ptr<LocalTransaction>> BeginLocal();

  // ---- reads ---------------------------------------------------------------
  // The row, or nullopt if it does not exist or is deleted. NotFound if the
  // table is not in the schema.
  Result<std::optional<Row>> Get(const std::string& table, const std::string& id);
  // Every live row of `table`, ordered by id.
  Result<std::vector<Row>> List(const std::string& table);
  // Runs one read-only SQL statement on a read-only connection.
  // InvalidArgument if it is not exactly one statement, or would write.
  Result<QueryResult> Query(const std::string& sql);
  // Every open conflict, ordered by table, id, column.
  Result<std::vector<Conflict>> Conflicts();
  // The local part of `aidsync status`.
  Result<ReplicaStatus> GetStatus();

  // ---- replication -----------------------------------------------------------
  // Applies received changesets (envelopes) in one transaction. Each is
  // checked (size, structure, signature, author's certificate, scope and
  // table authority, chain order) and then applied, held until its chain
  // predecessor arrives, or rejected: kept aside with its reason and counted,
  // never applied. One bad changeset never stops the others. Fails only for
  // local problems (IOError, Busy, Corruption of the store).
  Result<ApplyReport> ApplyRemote(const std::vector<std::string>& envelopes);

  // Runs `fn` in one write transaction (BEGIN IMMEDIATE): committed if it
  // returns OK, rolled back otherwise. For callers that apply a stream in
  // several batches all-or-nothing (bundles). Not reentrant.
  Status InWriteTransaction(const std::function<Status()>& fn);
  // ApplyRemote's work inside the caller's InWriteTransaction. Adds to
  // *report, which may carry over from earlier batches of the same stream.
  Status ApplyRemoteBatch(const std::vector<std::string>& envelopes, ApplyReport* report);

  // Calls fn(envelope) for every changeset in the log that a node with scope
  // `scope` may see (ChangesetVisibleTo), in log order, which keeps every
  // chain in order. The
  // recipient's own changesets are included: a node restored from an old
  // backup must get them back before it writes again, or it would reuse its
  // own sequence numbers.
  Status ForEachChangesetVisibleTo(const std::string& scope,
                                   const std::function<Status(std::string_view envelope)>& fn);
  // Every certificate in the trust store. Certificates are public (they
  // replicate in `stations`), so a recipient of any scope gets them all and can
  // check every author it is sent. `scope` is reserved for narrowing later.
  Result<std::vector<std::string>> CertificatesVisibleTo(const std::string& scope);

  // ---- chains, for the sync protocol (replica_chains.cc) ---------------------
  // Heads of every chain this node holds that a node of `scope` may see.
  Result<std::vector<ChainHead>> HeadsVisibleTo(const std::string& scope);
  // Whether changeset `id` is in the log.
  Result<bool> HoldsChangeset(const Digest& id);
  // A position in a chain: (seq, log id), so forks at one seq are told apart.
  struct ChainCursor {
    uint64_t seq = 0;
    int64_t log_id = 0;
  };
  struct LoggedChangeset {
    ChainCursor at;
    std::string envelope;
  };
  // Changesets of gap.chain with seq > gap.after_seq that come after `after`,
  // in (seq, log id) order — chain order — stopping before the changeset that
  // would take the total past max_bytes, except the first (a changeset larger
  // than max_bytes comes alone). Envelopes come unpacked from the log's stored form.
  Result<std::vector<LoggedChangeset>> ReadChain(const ChainGap& gap, const ChainCursor& after, size_t max_bytes);

  // Counts a refused input that is not a changeset (a malformed message, a
  // bad certificate in a hello, ...) under `reason` in status `rejected`.
  Status CountRejectedInput(const std::string& reason);

  // ---- peers (peers.cc) ------------------------------------------------------
  Result<std::optional<PeerRecord>> Peer(const std::string& id);
  // Inserts or replaces the record of peer p.id. Autocommits.
  Status SavePeer(const PeerRecord& p);
  // Every known peer, ordered by station code.
  Result<std::vector<PeerRecord>> Peers();
  // Appends a session to the history (the newest kMaxSessionsKept are kept).
  // Autocommits.
  Status RecordSession(const SessionRecord& r);
  // The sessions with `peer` (node key hex) that ended at or after since_ms,
  // oldest first; with `newest` > 0, only the newest that many of them.
  Result<std::vector<SessionRecord>> Sessions(const std::string& peer, int64_t since_ms, int64_t newest = 0);

  // Drops the domain tables and row metadata and re-materializes them from the
  // log. The result equals the state before (the log is the truth); also
  // picks up changesets that named columns this schema did not know before.
  // `progress`, if given, is called after each batch with (replayed, total).
  Status Rebuild(const std::function<void(int64_t done, int64_t total)>& progress = {});

  const Env& env() const { return env_; }
  // This node's identity key, for opening bundles sealed to it. Never log it
  // or let it leave the process.
  const SigningKey& identity_key() const { return key_; }
  const std::string& dir() const { return dir_; }

 private:
  friend class LocalTransaction;
  Replica(std::string dir, const Env& env, SigningKey key, std::unique_ptr<Database> db);

  Status LoadIdentity();
  // aidsync_node's internal_version (1 when absent): the forms this store
  // holds (docs/FORMATS.md section 0).
  Result<int64_t> StoreVersion();
  // Brings an older database to this schema version; rebuilds if changesets
  // were stored that name columns the old version lacked.
  Status Upgrade();
  // The next HLC for a local changeset; persists it. Inside a transaction.
  Result<uint64_t> NextLocalHlc();
  // Logs a received changeset under the next log id, then materializes it
  // (logged first: an HLC tie reads both changesets from the log). Must run
  // inside a transaction.
  // `stored`, if given, is log_packer_.PackStored(signed_cs.envelope), made on
  // another thread (VerifyAhead); otherwise it is made here.
  Status AppendAndApply(const ChangesetContent& content, const SignedChangeset& signed_cs,
                        std::vector<TouchedRow>* touched, const std::string* stored = nullptr);
  // The same for a changeset this node writes: signs `content` with the node
  // key on a second thread while this one materializes it under the next log
  // id, then logs it (signing was a quarter of a local write; the two need
  // nothing from each other: ChangesetApplier::Apply). `rows_are_new`: no
  // row of `content` has metadata yet. Returns the signed changeset. Inside
  // a transaction; on failure the caller rolls it back.
  Result<SignedChangeset> AppendAndApplyLocal(const ChangesetContent& content, bool rows_are_new,
                                              std::vector<TouchedRow>* touched);
  // Writes the log row of a changeset and folds it into its chain head.
  // `stored` is signed_cs.envelope's stored form (Packer::PackStored).
  Status LogChangeset(const ChangesetContent& content, const SignedChangeset& signed_cs, std::string_view stored,
                      int64_t log_id, bool complete);
  // One received changeset: check, then apply / hold / reject. Sets
  // *applied_id when it was applied, so held successors can be released.
  // Fails only for problems of this node's store.
  Status ApplyOneRemote(std::string_view envelope, ApplyReport* report, std::optional<Digest>* applied_id);
  // ApplyOneRemote's work once the envelope is decoded: `decoded` and `id`
  // are what DecodeChangeset(envelope, &id) returned.
  // `stored`, if given, is the envelope's stored form (Packer::PackStored).
  Status ApplyDecoded(std::string_view envelope, const Digest& id, const Result<ChangesetContent>& decoded,
                      ApplyReport* report, std::optional<Digest>* applied_id, const std::string* stored = nullptr);
  // Whether the author may have written `content`; on refusal *reason is the
  // stable reason key to count it under.
  Status CheckAuthority(const ChangesetContent& content, const char** reason);
  // Unauthorized if the author is revoked and `content` is past its limit.
  Status CheckNotRevoked(const ChangesetContent& content);
  // Moves a newly revoked key's changesets past its limits out of the log
  // (and out of the held store) into the rejected store, then rebuilds.
  // Inside a transaction.
  Status TakeBackRevoked(const Revocation& revocation);
  Status RebuildInTransaction(const std::function<void(int64_t done, int64_t total)>& progress);
  // RecordStation's work inside the caller's local transaction.
  Status RecordStationIn(LocalTransaction& tx, const Certificate& cert);
  Status RecordForks(const ChangesetContent& content, const Digest& id);
  Status ForgetRejection(const Digest& id);
  // Folds a newly logged changeset into its chain's head. Inside a transaction.
  Status UpdateChainHead(const ChangesetContent& content, const Digest& id);
  // Certificates replicate in the `stations` table (DESIGN 6): a received
  // stations row whose certificate verifies against the authority enters the
  // trust store, so nodes learn each other's keys through the hub.
  Status TrustStationRows(const std::vector<TouchedRow>& touched, ApplyReport* report);
  // Moves this station's notice counters past its own numbers that a
  // received changeset writes into `cases`, when the changeset's author is
  // certified under this station's code (this key, or an earlier one of the
  // code). Numbers under this code from any other author move nothing.
  Status AdvanceNoticeCounters(const ChangesetContent& content);
  // Moves the counter of `notice`'s year past it, if it is one of this
  // station's numbers (ParseNoticeNumber). Inside a transaction.
  Status AdvanceNoticeCounter(const std::string& notice);
  // InvalidArgument, naming notice_number, unless `notice` is exactly a
  // number of this station's form and code (FormatNoticeNumber's text).
  Status CheckOwnNoticeNumber(const std::string& notice);
  // A case other than `except_case` that holds (or, deleted, held) `notice`.
  Result<std::optional<std::string>> NoticeNumberHolder(const std::string& notice, const std::string& except_case);
  // Records that case `case_id` holds `notice` (aidsync_notice_numbers).
  Status RegisterNoticeNumber(const std::string& notice, const std::string& case_id);
  // Brings aidsync_notice_numbers up to date with the touched cases rows as
  // they now stand, and raises or clears the duplicate alert of every number
  // whose holders changed.
  Status RecordNoticeNumbers(const std::vector<TouchedRow>& touched);
  // The alert `notice:duplicate:<number>` while two or more cases hold
  // `notice`; none otherwise.
  Status RefreshNoticeDuplicate(const std::string& notice);
  // Adds to aidsync_notice_numbers every number the cases table and the
  // metadata of deleted cases hold (rows are never removed: an issued number
  // stays used), and makes the duplicate alerts afresh. Inside a transaction.
  Status RebuildNoticeNumbers();
  Status ObserveRemoteClock(const ChangesetContent& content);
  // Keeps a refused changeset aside with its reason and counts it.
  // `content` is what decoded (null for bytes that did not): its author,
  // scope, class and seq are kept, and its body only when
  // MayKeepRefusedBody says this node may hold it. The rejected store is
  // capped; `taken_back` (a changeset a revocation moved out of the log, a
  // signed record) is kept past the cap, since it exists nowhere else on
  // this node.
  Status Reject(std::string_view envelope, const Digest& id, const ChangesetContent* content,
                const std::string& reason, const std::string& detail, ApplyReport* report,
                bool taken_back = false);
  // Brings a store from before internal version 5 to it: aidsync_rejected
  // gains author, scope, class and seq, and loses every body this node may
  // not hold. Inside a transaction.
  Status MigrateRejectedStore();
  Status ReleaseHeld(const Digest& applied, ApplyReport* report);
  Result<std::string> AuthorName(std::string_view author_key);
  // The first column (text or blob) of every row `sql` returns.
  Result<std::vector<std::string>> FirstColumnOfEach(const std::string& sql);

  std::string dir_;
  Env env_;
  SigningKey key_;
  std::unique_ptr<Database> db_;
  SchemaDef schema_;
  NodeIdentity identity_;
  HybridClock clock_;
  ChangesetApplier applier_;
  // Compress envelopes for the log (sync/packing.h), each used by one thread:
  // sign_packer_ by the signing task of AppendAndApplyLocal (one at a time),
  // log_packer_ by the thread that uses this Replica. A received batch's
  // VerifyAhead worker has its own.
  Packer sign_packer_{kStoredEnvelopeLevel};
  Packer log_packer_{kStoredEnvelopeLevel};
};

}  // namespace aidsync
