/**
 * How one item of a provider batch can end other than with a reply, besides the `LlmError`s a
 * live call has: each carries the batch it was in and the provider's own reason.
 */
import * as Schema from "effect/Schema"

const fields = {
  provider: Schema.String,
  model: Schema.String,
  /** The provider's id of the batch the item was in. */
  batchId: Schema.String,
  message: Schema.String
}

/** The batch expired (its completion window passed) before this item was processed. */
export class BatchExpiredError extends Schema.TaggedError<BatchExpiredError>()("BatchExpiredError", fields) {}

/** The batch was cancelled before this item was processed. */
export class BatchCancelledError extends Schema.TaggedError<BatchCancelledError>()("BatchCancelledError", fields) {}

/** The whole batch failed (its input refused, or the provider gave up on it), with the provider's reason. */
export class BatchFailedError extends Schema.TaggedError<BatchFailedError>()("BatchFailedError", fields) {}

/** The provider's result line for this item could not be read; `excerpt` is its start. */
export class UnparseableResultError extends Schema.TaggedError<UnparseableResultError>()("UnparseableResultError", {
  ...fields,
  excerpt: Schema.String
}) {}

/** The batch ended and its results hold nothing for this item (a line that named no item counts here). */
export class MissingResultError extends Schema.TaggedError<MissingResultError>()("MissingResultError", fields) {}

/**
 * A request a batch API cannot take (a streaming request, a model the API does not batch):
 * the run is refused before anything is uploaded. `index` and `id` name the item.
 */
export class BatchInputError extends Schema.TaggedError<BatchInputError>()("BatchInputError", {
  provider: Schema.String,
  model: Schema.String,
  index: Schema.Number,
  id: Schema.String,
  message: Schema.String
}) {}

/** Every way an item can end in a batch besides a live call's errors. */
export type ItemError = BatchExpiredError | BatchCancelledError | BatchFailedError | UnparseableResultError | MissingResultError
