/** A file operation's failure in a few words, without the platform's `FileSystem.readFile (path): ENOENT …` wording. */
import type * as PlatformError from "@effect/platform/Error"

const reasons: Readonly<Record<PlatformError.SystemErrorReason, string | undefined>> = {
  NotFound: "no such file",
  PermissionDenied: "permission denied",
  AlreadyExists: "it already exists",
  BadResource: "not a file",
  Busy: "the file is busy",
  TimedOut: "timed out",
  InvalidData: undefined,
  UnexpectedEof: undefined,
  Unknown: undefined,
  WouldBlock: undefined,
  WriteZero: undefined
}

export const describe = (error: PlatformError.PlatformError): string => {
  if (error._tag === "SystemError") {
    const known = reasons[error.reason]
    if (known !== undefined) return known
    // the description without the operation and path the caller names itself
    return error.description?.replace(/^\w+: /, "") ?? error.reason
  }
  return error.description ?? error.message
}
