// Package faultload is the fault suite's tooling ("nothing lost, nothing stranded"): a load tool
// that plays a vendor, a ledger of what the connector acknowledged, a checker that compares the
// ledger with what the system stored, and the controls the suite needs to break things — a
// PostgreSQL server it can stop, start, pause (SIGSTOP) and resume, and the all-in-one binary as
// a subprocess it can kill -9 and restart.
//
// The load is Aliyun SMS uplinks (SmsUp HTTP batch pushes) to the sms connector's webhook
// /hooks/sms/aliyun/up, on the real wire format with the push URL's ?token=, each uplink with a
// unique sequence_id, which the connector turns into the event id sms:aliyun:up:<sequence_id>.
// A push counts as acknowledged only when the connector answered 2xx with Aliyun's success code
// ({"code":0}), which it does only after JetStream stored every event of the push; anything
// else (refused connection, 5xx, 404 before the route is mounted) is pushed again, as Aliyun
// would, until acknowledged.
//
// The [Checker] then holds the system to the ledger: every acknowledged id stored once in
// OMNI_IN, once in the unifier's messages table, one omni.desk.message.added on OMNI_DESK, and
// nothing left in OMNI_DLQ.
//
// It is test tooling, used by services/omnibus/fault_test.go: the API is not stable.
package faultload
