// Whether a call failed because its connection did, not by the service's
// answer, so that retrying it (or resuming a stream) is right.
//
// grpc-js, grpc-go, grpc++ and grpc-java say UNAVAILABLE for all of these.
// Connect for Node says UNAVAILABLE when it cannot connect, CANCELED when
// the server goes away and its HTTP/2 stream is reset, and ABORTED, with
// the Node socket error (ECONNRESET) as the cause, when the socket's read
// fails first: a killed host's reset, a load balancer dropping the
// connection. Which of the last two a killed server gives depends on what
// its socket still held unread. The service never answers ABORTED itself.
import { Code, ConnectError } from "@connectrpc/connect";

export function connectionBroke(err: unknown): boolean {
  const error = ConnectError.from(err);
  if (error.code === Code.Unavailable || error.code === Code.Canceled) return true;
  if (error.code !== Code.Aborted) return false;
  for (let cause: unknown = error.cause; cause instanceof Error; cause = cause.cause) {
    if (typeof (cause as NodeJS.ErrnoException).code === "string") return true;
  }
  return false;
}
