// Package faults holds the checkout's fault-injection tests, and nothing else: Toxiproxy sits
// between the function and both DynamoDB Local and stripe-mock, and each test times out, resets
// or slows a connection at one precise step of the flow, or has DynamoDB answer one of its error
// codes (throttling, InternalServerError, a cancelled transaction) before or after doing the
// work, then checks that the answer is safe, that the retry completes and that the tables still
// hold exactly one group of bookings per cart (docs/reliability.md).
package faults
