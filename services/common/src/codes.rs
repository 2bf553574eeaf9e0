//! The one catalogue of the stable machine-readable codes every service puts on its
//! errors: in the gRPC metadata `fiscus-error-code` ([`crate::error::GRPC_CODE_METADATA`])
//! and in the `code` member of RFC 9457 problem responses, and likewise in broadcast acks'
//! `reason_code`, receipts' `reason` (as `code: detail`) and streamed `error_code` fields.
//!
//! Codes are grouped by prefix, one module per prefix: `tx.duplicate` is [`tx::DUPLICATE`].
//! Producers and consumers use these constants instead of string literals, so a typo is a
//! compile error and a new code is added here first. A code never changes meaning once
//! released: a new meaning gets a new code, and a retired code is never reused.
//!
//! One file on purpose (it is longer than the 700 lines other modules keep to):
//! the catalogue is read as one list, and `ALL` must name every constant.

/// Analytics: the statistical analysis service's indicator API (its other
/// refusals, authentication, scope, disclosure and malformed queries, are the
/// exchange-adapter's `api.*` codes, under the same rules).
pub mod analytics {
    /// `after` is not a position `<height>.<index>` this list gave out.
    pub const BAD_AFTER: &str = "analytics.bad_after";

    /// `days` (idle funds) is not 1 to 3650.
    pub const BAD_DAYS: &str = "analytics.bad_days";

    /// `limit` is not 1 to the largest page (1000).
    pub const BAD_LIMIT: &str = "analytics.bad_limit";

    /// A month is not `YYYY-MM`, or `from_month` comes after `to_month`.
    pub const BAD_MONTH: &str = "analytics.bad_month";

    /// The analytics store failed to answer (an SQLite error). Not the caller's fault.
    pub const STORE: &str = "analytics.store";

    /// No program with this id has been appropriated on the chain the store has followed.
    pub const UNKNOWN_PROGRAM: &str = "analytics.unknown_program";

    /// An export would hold more rows than `max_export_rows`: narrow it by
    /// program or months.
    pub const TOO_LARGE: &str = "analytics.too_large";

    /// No org of the division tree has this code.
    pub const UNKNOWN_REGION: &str = "analytics.unknown_region";
}

/// Exchange-adapter: the REST and gRPC API that member systems call.
pub mod api {
    /// The adapter got an answer from the ledger-store it could not use (or an unexpected
    /// error). Not the caller's fault; retrying later may help.
    pub const BACKEND_ERROR: &str = "api.backend_error";

    /// The ledger-store refused the adapter's own call (permission denied): a member
    /// configuration fault. Retrying cannot help.
    pub const BACKEND_REFUSED: &str = "api.backend_refused";

    /// The ledger-store or every orderer is unreachable from the adapter.
    /// Retry later.
    pub const BACKEND_UNAVAILABLE: &str = "api.backend_unavailable";

    /// The `envelope` field is not standard base64. Retrying cannot help.
    pub const BAD_BASE64: &str = "api.bad_base64";

    /// The request body could not be read (e.g. the upload broke off).
    /// Retrying with the whole body may help.
    pub const BAD_BODY: &str = "api.bad_body";

    /// The cursor was not issued to this client for this list, or predates an adapter
    /// restart. Restart the listing without a cursor.
    pub const BAD_CURSOR: &str = "api.bad_cursor";

    /// The Idempotency-Key header is not 1 to 128 visible ASCII characters.
    /// Retrying cannot help.
    pub const BAD_IDEMPOTENCY_KEY: &str = "api.bad_idempotency_key";

    /// A path segment is malformed (1 to 64 letters, digits, '-', '_' or '.').
    /// Retrying cannot help.
    pub const BAD_PATH: &str = "api.bad_path";

    /// The query string or Last-Event-ID header is malformed or out of range.
    /// Retrying cannot help.
    pub const BAD_QUERY: &str = "api.bad_query";

    /// A tx id in the path is not 64 hex digits. Retrying cannot help.
    pub const BAD_TX_ID: &str = "api.bad_tx_id";

    /// The body (JSON or import file) is over the size limit. Send less.
    pub const BODY_TOO_LARGE: &str = "api.body_too_large";

    /// The caller's TLS client certificate is revoked. Enroll a new one.
    pub const CERTIFICATE_REVOKED: &str = "api.certificate_revoked";

    /// The body was not sent as `Content-Type: application/json`.
    /// Retrying cannot help.
    pub const CONTENT_TYPE: &str = "api.content_type";

    /// Custodial signing is not enabled for this API client; submit
    /// client-signed envelopes instead. Retrying cannot help.
    pub const CUSTODIAL_NOT_ENABLED: &str = "api.custodial_not_enabled";

    /// Rendering an export (CSV or .xlsx) or the import template failed
    /// inside the adapter. Retrying may help.
    pub const EXPORT_FAILED: &str = "api.export_failed";

    /// The Idempotency-Key was already used for a different operation.
    /// Use a new key for a new operation.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "api.idempotency_key_reused";

    /// The adapter failed internally (no API state, no randomness for cursors).
    /// Retrying later may help.
    pub const INTERNAL: &str = "api.internal";

    /// The API key is not known to this member. Retrying cannot help.
    pub const INVALID_API_KEY: &str = "api.invalid_api_key";

    /// The ledger-store refused an argument the adapter passed on.
    /// Retrying the same request cannot help.
    pub const INVALID_ARGUMENT: &str = "api.invalid_argument";

    /// The JSON body does not match the request schema. Retrying cannot help.
    pub const INVALID_BODY: &str = "api.invalid_body";

    /// An operation's fields are inconsistent (e.g. a tx id not 64 hex digits, or
    /// not exactly one recipient id). Retrying cannot help.
    pub const INVALID_OPERATION: &str = "api.invalid_operation";

    /// The body is not valid JSON. Retrying cannot help.
    pub const MALFORMED_JSON: &str = "api.malformed_json";

    /// No API key was sent (`Authorization: Bearer` or `X-Api-Key`) and no client
    /// certificate stood in for one. Send a key.
    pub const MISSING_API_KEY: &str = "api.missing_api_key";

    /// No such route in this API (see /openapi.json). Retrying cannot help.
    pub const NO_ROUTE: &str = "api.no_route";

    /// The asked height is 0 or above the chain's head. Ask for 1 to the head.
    pub const NO_SUCH_HEIGHT: &str = "api.no_such_height";

    /// The disclosure policy forbids the caller's org to read that org's data.
    /// Retrying cannot help.
    pub const NOT_DISCLOSED: &str = "api.not_disclosed";

    /// The block is committed but not yet attested by a majority of members.
    /// Retry later.
    pub const NOT_FINAL: &str = "api.not_final";

    /// Nothing exists under that id or path (account, transaction, block). A retry
    /// helps only if it may appear later, e.g. once a transaction commits.
    pub const NOT_FOUND: &str = "api.not_found";

    /// The client is over its request rate. Retry after `Retry-After` seconds.
    pub const RATE_LIMITED: &str = "api.rate_limited";

    /// The API client or certificate lacks the scope this call needs.
    /// Retrying cannot help.
    pub const SCOPE_NOT_GRANTED: &str = "api.scope_not_granted";

    /// A gRPC call came without a consortium client certificate.
    /// Call again with one.
    pub const UNAUTHENTICATED: &str = "api.unauthenticated";

    /// The caller certificate's org is not in the consortium registry.
    /// Retrying cannot help.
    pub const UNKNOWN_ORG: &str = "api.unknown_org";

    /// The transaction was ordered but not committed or final within the wait limit.
    /// Query it later instead of resubmitting.
    pub const WAIT_TIMEOUT: &str = "api.wait_timeout";

    /// The envelope or operation acts for another org than the API client's own.
    /// Retrying cannot help.
    pub const WRONG_ORG: &str = "api.wrong_org";

    /// The certificate's role may not call the API (only client or admin).
    /// Retrying cannot help.
    pub const WRONG_ROLE: &str = "api.wrong_role";
}

/// Identity-ca: enrollment, renewal, revocation and the CRL.
pub mod ca {
    /// A CA already exists in the target directory; pass --force to replace it.
    pub const ALREADY_INITIALIZED: &str = "ca.already_initialized";

    /// The CSR is malformed or its signature does not verify. Retrying cannot help.
    pub const BAD_CSR: &str = "ca.bad_csr";

    /// The caller's certificate is revoked or expired. Enroll again with a secret.
    pub const CALLER_INVALID: &str = "ca.caller_invalid";

    /// A concurrent registry write conflicted with this one; nothing was stored.
    /// Retrying may help.
    pub const CONFLICT: &str = "ca.conflict";

    /// The CA failed internally (storage, I/O, certificate generation).
    /// Retrying later may help.
    pub const INTERNAL: &str = "ca.internal";

    /// An argument is invalid (role, DNS name, IP address, chain).
    /// Retrying cannot help.
    pub const INVALID_ARGUMENT: &str = "ca.invalid_argument";

    /// The public key is already certified for another member.
    /// Generate a new key.
    pub const KEY_OF_ANOTHER_MEMBER: &str = "ca.key_of_another_member";

    /// The key type is not one the profile allows where it was used: the
    /// main key must be Ed25519 (an API client's may be ECDSA P-256), the
    /// second CSR's ECDSA P-256; anything else (RSA, P-384, …) never. Retrying
    /// cannot help.
    pub const KEY_TYPE: &str = "ca.key_type";

    /// A requested certificate name is not on the member's allow-list, or is the
    /// identity-ca's own. Retrying cannot help.
    pub const NAME_NOT_ALLOWED: &str = "ca.name_not_allowed";

    /// No CRL has been issued yet. Retry after the first one is.
    pub const NO_CRL: &str = "ca.no_crl";

    /// No such certificate (or CRL number) in the registry. Retrying cannot help.
    pub const NOT_FOUND: &str = "ca.not_found";

    /// The CA's files are missing or unreadable; initialise the CA first.
    pub const NOT_INITIALIZED: &str = "ca.not_initialized";

    /// The caller's role or member may not do this (e.g. enroll without a secret
    /// as a non-admin, revoke another member's certificate).
    pub const PERMISSION_DENIED: &str = "ca.permission_denied";

    /// Client side: a remote CA refused the request; the message carries its code.
    /// Whether a retry helps depends on that code.
    pub const REFUSED: &str = "ca.refused";

    /// The consortium config does not grant this role to the member.
    /// Retrying cannot help.
    pub const ROLE_NOT_ALLOWED: &str = "ca.role_not_allowed";

    /// The enrollment secret is for another member or role. Retrying cannot help.
    pub const SECRET_MISMATCH: &str = "ca.secret_mismatch";

    /// The enrollment secret was already spent. Ask for a new one.
    pub const SECRET_REUSED: &str = "ca.secret_reused";

    /// A request field (CSR, secret, name list, reason, chain) is over its limit.
    /// Retrying cannot help.
    pub const TOO_LARGE: &str = "ca.too_large";

    /// The call needs a client certificate and came without one.
    /// Call again with one.
    pub const UNAUTHENTICATED: &str = "ca.unauthenticated";

    /// The member code is not in the consortium config. Retrying cannot help.
    pub const UNKNOWN_MEMBER: &str = "ca.unknown_member";

    /// The enrollment secret is not known to the CA. Retrying cannot help.
    pub const UNKNOWN_SECRET: &str = "ca.unknown_secret";
}

/// Transfer contract: refusals recorded in receipts, and the adapter's checks before
/// ordering (it runs the same rule functions).
pub mod contract {
    /// The allocation was already acknowledged. Not retryable.
    pub const ALREADY_ACKNOWLEDGED: &str = "contract.already_acknowledged";

    /// The amount is not positive, or a balance would overflow. Not retryable.
    pub const BAD_AMOUNT: &str = "contract.bad_amount";

    /// The economic classification code is not 3 to 7 digits.
    /// Not retryable; fix the call.
    pub const BAD_ECONOMIC_CODE: &str = "contract.bad_economic_code";

    /// An `external_id` is longer than 64 characters or has characters other
    /// than visible ASCII (no spaces, no Chinese). Not retryable; fix the call.
    pub const BAD_EXTERNAL_ID: &str = "contract.bad_external_id";

    /// A new program's fiscal year is not the block's (or the next, for an
    /// advance allocation). Not retryable; fix the call.
    pub const BAD_FISCAL_YEAR: &str = "contract.bad_fiscal_year";

    /// The functional classification code is not 3, 5 or 7 digits.
    /// Not retryable; fix the call.
    pub const BAD_FUNCTIONAL_CODE: &str = "contract.bad_functional_code";

    /// The resident id number fails its birth date or check character.
    /// Not retryable; fix the call.
    pub const BAD_ID_NUMBER: &str = "contract.bad_id_number";

    /// The program kind is not general or special.
    /// Not retryable; fix the call.
    pub const BAD_PROGRAM_KIND: &str = "contract.bad_program_kind";

    /// The recipient has no valid unified social credit code or 32-byte
    /// personal id hash. Not retryable; fix the call.
    pub const BAD_RECIPIENT: &str = "contract.bad_recipient";

    /// The account is frozen by a supervisor. A new transaction may succeed once
    /// it is unfrozen.
    pub const FROZEN: &str = "contract.frozen";

    /// The account is already frozen (or already unfrozen). Nothing to do.
    pub const FROZEN_STATE: &str = "contract.frozen_state";

    /// The account balance is below the amount. A new transaction may
    /// succeed once funds arrive.
    pub const INSUFFICIENT_FUNDS: &str = "contract.insufficient_funds";

    /// The executor did not execute the transaction (an internal fault).
    /// Submit it again as a new transaction.
    pub const INTERNAL: &str = "contract.internal";

    /// An argument is malformed: a missing field, a bad org code or program id,
    /// bad text, or a mismatched account. Not retryable.
    pub const MALFORMED: &str = "contract.malformed";

    /// A new program needs its document number (文号).
    /// Not retryable; fix the call.
    pub const MISSING_DOCUMENT: &str = "contract.missing_document";

    /// An adjustment needs the signatures of both orgs, which custodial
    /// signing cannot give. Submit an envelope both orgs signed.
    pub const NEEDS_BOTH_PARTIES: &str = "contract.needs_both_parties";

    /// The adjustment does not send the corrected transaction's funds back
    /// from its receiver to its sender. Not retryable.
    pub const NOT_A_REVERSAL: &str = "contract.not_a_reversal";

    /// A recovery's target is not above the sender, or is above the program's
    /// owner. Not retryable.
    pub const NOT_ANCESTOR: &str = "contract.not_ancestor";

    /// An allocation's target is not a child of the sender (or a descendant,
    /// for direct funds). Not retryable.
    pub const NOT_DESCENDANT: &str = "contract.not_descendant";

    /// No signer belongs to the org that owns the account.
    /// Not retryable; that org must sign.
    pub const NOT_OWNER: &str = "contract.not_owner";

    /// Only the program's owner appropriates into it. Not retryable.
    pub const NOT_PROGRAM_OWNER: &str = "contract.not_program_owner";

    /// The account is outside the signing supervisor's jurisdiction.
    /// Not retryable.
    pub const OUTSIDE_JURISDICTION: &str = "contract.outside_jurisdiction";

    /// The adjustment would correct more than the original transaction
    /// moved. Not retryable.
    pub const OVER_CORRECTION: &str = "contract.over_correction";

    /// The program exists with other details than the ones given.
    /// Not retryable; omit or fix the details.
    pub const PROGRAM_MISMATCH: &str = "contract.program_mismatch";

    /// The creator may not create a program with this id (a local
    /// program's id starts with its owner's code and '-'). Not retryable.
    pub const PROGRAM_NAMESPACE: &str = "contract.program_namespace";

    /// A supervisor (or an org of no level) cannot hold, move or
    /// receive funds. Not retryable.
    pub const SUPERVISOR_MOVES_NO_MONEY: &str = "contract.supervisor_moves_no_money";

    /// Only a supervisor may freeze or unfreeze an account.
    /// Not retryable.
    pub const SUPERVISORS_ONLY: &str = "contract.supervisors_only";

    /// The contract read a key the call did not declare, or wrote a read-only
    /// one: a contract fault, not the caller's. Not retryable as is.
    pub const UNDECLARED_KEY: &str = "contract.undeclared_key";

    /// The account to freeze or unfreeze does not exist. Not retryable.
    pub const UNKNOWN_ACCOUNT: &str = "contract.unknown_account";

    /// The acknowledged allocation does not exist. Not retryable.
    pub const UNKNOWN_ALLOCATION: &str = "contract.unknown_allocation";

    /// The corrected transaction is not an allocation or a
    /// recovery. Not retryable.
    pub const UNKNOWN_CORRECTION_TARGET: &str = "contract.unknown_correction_target";

    /// The org is not in the registry. Not retryable.
    pub const UNKNOWN_ORG: &str = "contract.unknown_org";

    /// The program has no appropriation yet, or a first appropriation gave
    /// no program details. Not retryable as is.
    pub const UNKNOWN_PROGRAM: &str = "contract.unknown_program";
}

/// Contract-executor's `ExecuteBlock` service, called by the member's own ledger-store.
pub mod executor {
    /// The caller is not a node certificate of this member, the only caller
    /// allowed. Retrying cannot help.
    pub const FORBIDDEN: &str = "executor.forbidden";

    /// Execution failed inside the contract-executor (a fault of this node, not a
    /// verdict on the block). The ledger-store retries.
    pub const INTERNAL: &str = "executor.internal";

    /// The ExecuteBlock request is inconsistent (missing block, config or
    /// declared keys). Retrying the same request cannot help.
    pub const MALFORMED_REQUEST: &str = "executor.malformed_request";

    /// `ExecuteBlock` was called without a client certificate.
    /// Retrying cannot help.
    pub const UNAUTHENTICATED: &str = "executor.unauthenticated";

    /// The consortium config names a contract version this build does
    /// not implement. Needs another build.
    pub const UNSUPPORTED_CONTRACT: &str = "executor.unsupported_contract";
}

/// Gossip-gateway: the service other members' gateways call.
pub mod gossip {
    /// A pushed block failed verification; the sender is penalized and may be
    /// banned. Not retryable.
    pub const BAD_BLOCK: &str = "gossip.bad_block";

    /// The calling member sent bad blocks and is disconnected for a while.
    /// Retry after the ban.
    pub const BANNED: &str = "gossip.banned";

    /// The caller's certificate is not a node certificate.
    /// Retrying cannot help.
    pub const FORBIDDEN: &str = "gossip.forbidden";

    /// The caller is not a current consortium member. Retrying cannot help.
    pub const NOT_MEMBER: &str = "gossip.not_member";

    /// A push or attestation batch is over its limit (1,024 blocks, 256
    /// attestations). Send smaller batches.
    pub const TOO_MANY: &str = "gossip.too_many";

    /// The call came without a client certificate. Retrying cannot help.
    pub const UNAUTHENTICATED: &str = "gossip.unauthenticated";
}

/// Governance contract: proposals and votes, refused in receipts.
pub mod governance {
    /// A signing org already voted on the proposal; votes do not change.
    /// Not retryable.
    pub const ALREADY_VOTED: &str = "governance.already_voted";

    /// The proposed CRL is not signed by a consortium root.
    /// Not retryable.
    pub const BAD_CRL_SIGNATURE: &str = "governance.bad_crl_signature";

    /// The proposal is invalid or cannot apply to the current config;
    /// the message says why. Not retryable as is.
    pub const INVALID_PROPOSAL: &str = "governance.invalid_proposal";

    /// The chain has no consortium configuration. Not retryable.
    pub const NO_CONFIG: &str = "governance.no_config";

    /// No signer is a current consortium member; only members propose and
    /// vote. Not retryable.
    pub const NOT_MEMBER: &str = "governance.not_member";

    /// The proposal was already decided; it takes no more votes.
    /// Not retryable.
    pub const PROPOSAL_CLOSED: &str = "governance.proposal_closed";

    /// The proposal already failed (or became inapplicable); it takes no
    /// more votes. Propose again instead.
    pub const PROPOSAL_FAILED: &str = "governance.proposal_failed";

    /// No proposal has that tx id. Not retryable.
    pub const UNKNOWN_PROPOSAL: &str = "governance.unknown_proposal";
}

/// Exchange-adapter's bulk import (`POST /v1/imports`).
pub mod import {
    /// The import file is not a JSON array or CSV of rows, or has no rows.
    /// Fix the file.
    pub const BAD_FILE: &str = "import.bad_file";

    /// A CSV file is neither UTF-8 nor GB18030 (or not the encoding named
    /// by `?encoding=`). Save it as "CSV UTF-8" or as a GB18030/GBK CSV.
    pub const BAD_ENCODING: &str = "import.bad_encoding";

    /// A row's external_id was already imported with different content (the
    /// error names the first transaction); it is never paid twice. Use a new
    /// external_id for a new payment.
    pub const EXTERNAL_ID_CONFLICT: &str = "import.external_id_conflict";

    /// The file's rows together move more from an account than it holds
    /// (reported once, in `file_errors`, naming the rows). Split the file or
    /// wait for funds.
    pub const INSUFFICIENT_FUNDS: &str = "import.insufficient_funds";

    /// Some rows are invalid (listed in `errors`); nothing was submitted.
    /// Fix them and send the file again.
    pub const INVALID_ROWS: &str = "import.invalid_rows";

    /// The file has more rows than one import takes (100,000). Split it.
    pub const TOO_MANY_ROWS: &str = "import.too_many_rows";
}

/// Exchange-adapter's webhooks and their dead letters (`/v1/webhooks/…`).
pub mod webhook {
    /// The dead letter was already delivered or acknowledged (so it is
    /// neither replayed nor acknowledged again); nothing changed.
    pub const ALREADY_RESOLVED: &str = "webhook.already_resolved";

    /// A replay did not reach the receiver (the error says why); the letter
    /// stays open with the attempt counted. Retry when the receiver is up.
    pub const DELIVERY_FAILED: &str = "webhook.delivery_failed";

    /// No dead letter has that id (it never existed, or was dropped as one
    /// of the oldest beyond the 10,000 kept). List them again.
    pub const UNKNOWN_DEAD_LETTER: &str = "webhook.unknown_dead_letter";

    /// The dead letter's webhook is no longer configured on this adapter, so
    /// it cannot be replayed. Acknowledge it instead.
    pub const UNKNOWN_WEBHOOK: &str = "webhook.unknown_webhook";
}

/// Ledger-store: `Ledger` queries and `LedgerIngest` commits.
pub mod ledger {
    /// The block is malformed, does not link to the previous block, has a bad
    /// orderer signature or a timestamp going back. Not retryable.
    pub const BAD_BLOCK: &str = "ledger.bad_block";

    /// `creator_cert_id` is not 32 bytes. Retrying cannot help.
    pub const BAD_CERT_ID: &str = "ledger.bad_cert_id";

    /// The block hash is not 32 bytes. Retrying cannot help.
    pub const BAD_HASH: &str = "ledger.bad_hash";

    /// The page token is malformed or belongs to another scan. Restart the
    /// scan without it.
    pub const BAD_PAGE_TOKEN: &str = "ledger.bad_page_token";

    /// The tx id is not 32 bytes. Retrying cannot help.
    pub const BAD_TX_ID: &str = "ledger.bad_tx_id";

    /// Too many blocks in one `CommitBlocks` call. Send fewer.
    pub const BATCH_TOO_LARGE: &str = "ledger.batch_too_large";

    /// Less than `min_free_bytes` is free on the ledger-store's disk: commits
    /// are paused and the block was not committed. Retry when space is freed.
    pub const DISK_FULL: &str = "ledger.disk_full";

    /// The contract-executor failed or is unreachable; the block was not
    /// committed. Retry later.
    pub const EXECUTOR_UNAVAILABLE: &str = "ledger.executor_unavailable";

    /// The ingest caller is not a node certificate of this member.
    /// Retrying cannot help.
    pub const FORBIDDEN: &str = "ledger.forbidden";

    /// Storage failure or corrupt data in the ledger-store. Retrying later may help.
    pub const INTERNAL: &str = "ledger.internal";

    /// A key in the request is over 1,024 bytes. Retrying cannot help.
    pub const KEY_TOO_LONG: &str = "ledger.key_too_long";

    /// The block is committed but not yet attested by a majority of members.
    /// Retry later.
    pub const NOT_FINAL: &str = "ledger.not_final";

    /// No such block, receipt, transaction, attestation, height or lineage here.
    /// A retry helps only for something still to come.
    pub const NOT_FOUND: &str = "ledger.not_found";

    /// The block does not follow the ledger's head. Resending it cannot help;
    /// resync to the head.
    pub const NOT_NEXT: &str = "ledger.not_next";

    /// The store has no or another genesis, or this build lacks a contract version
    /// the chain needs. Needs an operator.
    pub const NOT_READY: &str = "ledger.not_ready";

    /// Too many attestations in one `ReportFinal` call. Send fewer.
    pub const TOO_MANY: &str = "ledger.too_many";

    /// An ingest call came without a client certificate.
    /// Retrying cannot help.
    pub const UNAUTHENTICATED: &str = "ledger.unauthenticated";
}

/// Orderers: broadcast acks (`reason_code`) and the admin service.
pub mod orderer {
    /// Membership changes need an admin certificate. Retrying cannot help.
    pub const ADMIN_ONLY: &str = "orderer.admin_only";

    /// An admin or Raft transport request is malformed (a required field is missing or
    /// too long, or a Raft message does not decode). Retrying cannot help.
    pub const BAD_REQUEST: &str = "orderer.bad_request";

    /// Too many transactions are pending. Retry later; resubmitting is safe.
    pub const BUSY: &str = "orderer.busy";

    /// The orderer's configuration is invalid. Needs an operator.
    pub const CONFIG: &str = "orderer.config";

    /// The Raft transport was called with a certificate that is not an orderer's.
    /// Retrying cannot help.
    pub const FORBIDDEN: &str = "orderer.forbidden";

    /// The orderer failed internally; the transaction was not ordered.
    /// Resubmitting later is safe.
    pub const INTERNAL: &str = "orderer.internal";

    /// This orderer is not the leader, or none is known yet; nothing was ordered.
    /// Resubmit shortly.
    pub const NO_LEADER: &str = "orderer.no_leader";

    /// The block holding the transaction could not be proposed or was superseded;
    /// it was not ordered. Resubmit.
    pub const RETRY: &str = "orderer.retry";

    /// The orderer's raft node has stopped. Retry on another orderer.
    pub const STOPPED: &str = "orderer.stopped";

    /// Admitted but not committed in time; it may still be ordered. Resubmitting is
    /// safe (a replay answers `tx.duplicate`).
    pub const TIMEOUT: &str = "orderer.timeout";
}

/// Transaction admission and validation: the orderers, the ledger-store, the adapter and
/// the executor all refuse a malformed or wrongly signed transaction with these.
pub mod tx {
    /// The envelope or payload does not decode, or names no contract call.
    /// Resending the same bytes cannot help.
    pub const BAD_ENCODING: &str = "tx.bad_encoding";

    /// A signature does not verify. Sign again; resending cannot help.
    pub const BAD_SIGNATURE: &str = "tx.bad_signature";

    /// The same transaction was already ordered or is in the chain; it is not
    /// applied twice. Query its receipt instead.
    pub const DUPLICATE: &str = "tx.duplicate";

    /// A signer's certificate has expired. Renew it and sign again.
    pub const EXPIRED_CERTIFICATE: &str = "tx.expired_certificate";

    /// The creator already used this nonce for another transaction.
    /// Use a new nonce (a new Idempotency-Key).
    pub const NONCE_REUSED: &str = "tx.nonce_reused";

    /// The orderers refused the transaction for a reason the adapter does not name;
    /// the message has the detail. Retrying may help.
    pub const REFUSED: &str = "tx.refused";

    /// A signer's certificate is revoked. Sign with a valid one.
    pub const REVOKED_CERTIFICATE: &str = "tx.revoked_certificate";

    /// The envelope is over a size or count limit. Shrink it; resending cannot help.
    pub const TOO_LARGE: &str = "tx.too_large";

    /// A signer's certificate is not a known consortium certificate.
    /// Enroll it, or sign with a known one; resending cannot help.
    pub const UNKNOWN_CERTIFICATE: &str = "tx.unknown_certificate";

    /// The payload names another consortium. Resending cannot help.
    pub const WRONG_CONSORTIUM: &str = "tx.wrong_consortium";
}

/// Every code above, sorted.
pub const ALL: &[&str] = &[
    analytics::BAD_AFTER,
    analytics::BAD_DAYS,
    analytics::BAD_LIMIT,
    analytics::BAD_MONTH,
    analytics::STORE,
    analytics::TOO_LARGE,
    analytics::UNKNOWN_PROGRAM,
    analytics::UNKNOWN_REGION,
    api::BACKEND_ERROR,
    api::BACKEND_REFUSED,
    api::BACKEND_UNAVAILABLE,
    api::BAD_BASE64,
    api::BAD_BODY,
    api::BAD_CURSOR,
    api::BAD_IDEMPOTENCY_KEY,
    api::BAD_PATH,
    api::BAD_QUERY,
    api::BAD_TX_ID,
    api::BODY_TOO_LARGE,
    api::CERTIFICATE_REVOKED,
    api::CONTENT_TYPE,
    api::CUSTODIAL_NOT_ENABLED,
    api::EXPORT_FAILED,
    api::IDEMPOTENCY_KEY_REUSED,
    api::INTERNAL,
    api::INVALID_API_KEY,
    api::INVALID_ARGUMENT,
    api::INVALID_BODY,
    api::INVALID_OPERATION,
    api::MALFORMED_JSON,
    api::MISSING_API_KEY,
    api::NOT_DISCLOSED,
    api::NOT_FINAL,
    api::NOT_FOUND,
    api::NO_ROUTE,
    api::NO_SUCH_HEIGHT,
    api::RATE_LIMITED,
    api::SCOPE_NOT_GRANTED,
    api::UNAUTHENTICATED,
    api::UNKNOWN_ORG,
    api::WAIT_TIMEOUT,
    api::WRONG_ORG,
    api::WRONG_ROLE,
    ca::ALREADY_INITIALIZED,
    ca::BAD_CSR,
    ca::CALLER_INVALID,
    ca::CONFLICT,
    ca::INTERNAL,
    ca::INVALID_ARGUMENT,
    ca::KEY_OF_ANOTHER_MEMBER,
    ca::KEY_TYPE,
    ca::NAME_NOT_ALLOWED,
    ca::NOT_FOUND,
    ca::NOT_INITIALIZED,
    ca::NO_CRL,
    ca::PERMISSION_DENIED,
    ca::REFUSED,
    ca::ROLE_NOT_ALLOWED,
    ca::SECRET_MISMATCH,
    ca::SECRET_REUSED,
    ca::TOO_LARGE,
    ca::UNAUTHENTICATED,
    ca::UNKNOWN_MEMBER,
    ca::UNKNOWN_SECRET,
    contract::ALREADY_ACKNOWLEDGED,
    contract::BAD_AMOUNT,
    contract::BAD_ECONOMIC_CODE,
    contract::BAD_EXTERNAL_ID,
    contract::BAD_FISCAL_YEAR,
    contract::BAD_FUNCTIONAL_CODE,
    contract::BAD_ID_NUMBER,
    contract::BAD_PROGRAM_KIND,
    contract::BAD_RECIPIENT,
    contract::FROZEN,
    contract::FROZEN_STATE,
    contract::INSUFFICIENT_FUNDS,
    contract::INTERNAL,
    contract::MALFORMED,
    contract::MISSING_DOCUMENT,
    contract::NEEDS_BOTH_PARTIES,
    contract::NOT_ANCESTOR,
    contract::NOT_A_REVERSAL,
    contract::NOT_DESCENDANT,
    contract::NOT_OWNER,
    contract::NOT_PROGRAM_OWNER,
    contract::OUTSIDE_JURISDICTION,
    contract::OVER_CORRECTION,
    contract::PROGRAM_MISMATCH,
    contract::PROGRAM_NAMESPACE,
    contract::SUPERVISORS_ONLY,
    contract::SUPERVISOR_MOVES_NO_MONEY,
    contract::UNDECLARED_KEY,
    contract::UNKNOWN_ACCOUNT,
    contract::UNKNOWN_ALLOCATION,
    contract::UNKNOWN_CORRECTION_TARGET,
    contract::UNKNOWN_ORG,
    contract::UNKNOWN_PROGRAM,
    executor::FORBIDDEN,
    executor::INTERNAL,
    executor::MALFORMED_REQUEST,
    executor::UNAUTHENTICATED,
    executor::UNSUPPORTED_CONTRACT,
    gossip::BAD_BLOCK,
    gossip::BANNED,
    gossip::FORBIDDEN,
    gossip::NOT_MEMBER,
    gossip::TOO_MANY,
    gossip::UNAUTHENTICATED,
    governance::ALREADY_VOTED,
    governance::BAD_CRL_SIGNATURE,
    governance::INVALID_PROPOSAL,
    governance::NOT_MEMBER,
    governance::NO_CONFIG,
    governance::PROPOSAL_CLOSED,
    governance::PROPOSAL_FAILED,
    governance::UNKNOWN_PROPOSAL,
    import::BAD_ENCODING,
    import::BAD_FILE,
    import::EXTERNAL_ID_CONFLICT,
    import::INSUFFICIENT_FUNDS,
    import::INVALID_ROWS,
    import::TOO_MANY_ROWS,
    ledger::BAD_BLOCK,
    ledger::BAD_CERT_ID,
    ledger::BAD_HASH,
    ledger::BAD_PAGE_TOKEN,
    ledger::BAD_TX_ID,
    ledger::BATCH_TOO_LARGE,
    ledger::EXECUTOR_UNAVAILABLE,
    ledger::FORBIDDEN,
    ledger::INTERNAL,
    ledger::KEY_TOO_LONG,
    ledger::NOT_FINAL,
    ledger::NOT_FOUND,
    ledger::NOT_NEXT,
    ledger::NOT_READY,
    ledger::TOO_MANY,
    ledger::UNAUTHENTICATED,
    orderer::ADMIN_ONLY,
    orderer::BAD_REQUEST,
    orderer::BUSY,
    orderer::CONFIG,
    orderer::FORBIDDEN,
    orderer::INTERNAL,
    orderer::NO_LEADER,
    orderer::RETRY,
    orderer::STOPPED,
    orderer::TIMEOUT,
    tx::BAD_ENCODING,
    tx::BAD_SIGNATURE,
    tx::DUPLICATE,
    tx::EXPIRED_CERTIFICATE,
    tx::NONCE_REUSED,
    tx::REFUSED,
    tx::REVOKED_CERTIFICATE,
    tx::TOO_LARGE,
    tx::UNKNOWN_CERTIFICATE,
    tx::WRONG_CONSORTIUM,
    webhook::ALREADY_RESOLVED,
    webhook::DELIVERY_FAILED,
    webhook::UNKNOWN_DEAD_LETTER,
    webhook::UNKNOWN_WEBHOOK,
];
