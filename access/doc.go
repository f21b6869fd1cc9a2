// Package access decides who may use the endpoints that serve the
// pipeline's data (the read-only SQL endpoint, snapshots on request, the
// Arrow Flight SQL server, which takes the same tokens and TLS):
//
//   - bearer tokens, from a file that is re-read when it changes (so a
//     token is rotated without a restart) or from the environment, kept
//     only as SHA-256 digests and compared in constant time;
//   - TLS: the server's certificate and key, re-read when they are
//     rotated, and optionally the authorities whose client certificates
//     the server requires (mutual TLS);
//   - Guard, an http.Handler in front of the endpoint that refuses a
//     browser's request from a page of another origin (Origin,
//     Sec-Fetch-Site) and a request without an accepted token, before the
//     endpoint reads a byte of SQL.
//
// The client side — reading the token a client sends, the TLS a client
// speaks — is here too, so that both ends read the same files the same way.
//
// Nothing here logs or returns a token's text: errors say what is wrong
// with a token, never what it is.
package access
