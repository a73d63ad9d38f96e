/**
 * The HTTP calls of a batch API: JSON requests and streamed line-by-line downloads, each on a
 * key leased from the pool for that call alone (a poll every minute for a day must not hold a
 * key in between), each failure the typed error the API's error body and status say.
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as KeyPool from "../../KeyPool.js"
import * as Err from "../../LlmError.js"
import type { ReadError } from "../request/errorBody.js"
import { fromResponse, redactSecret } from "../request/errors.js"
import { describe } from "../transport/types.js"

export type Method = "GET" | "POST" | "DELETE"

/** A request body: JSON, a multipart form (one text file and plain fields), or a `multipart/related` upload (metadata and one file). */
export type Body =
  | { readonly _tag: "Json"; readonly value: unknown }
  /** JSON already serialised (a batch assembled from its entries' text). */
  | { readonly _tag: "JsonText"; readonly text: string }
  | {
    readonly _tag: "Form"
    readonly fields: Readonly<Record<string, string>>
    readonly file: { readonly name: string; readonly field: string; readonly text: string; readonly type: string }
  }
  | { readonly _tag: "Related"; readonly metadata: unknown; readonly file: { readonly text: string; readonly type: string } }

export interface BatchHttp {
  readonly provider: string
  readonly model: string
  /** Sends and reads the reply as JSON (`undefined` for an empty body). */
  readonly json: (method: Method, url: string, body?: Body) => Effect.Effect<unknown, Err.LlmError>
  /** GETs `url` and gives its body line by line, never holding it whole. */
  readonly lines: (url: string) => Stream.Stream<string, Err.LlmError>
}

export interface HttpOptions {
  readonly provider: string
  readonly model: string
  readonly auth: (key: Redacted.Redacted<string>) => Record<string, string>
  readonly headers: Readonly<Record<string, string>>
  readonly readError: ReadError
}

const networkError = (provider: string, model: string, error: unknown) =>
  new Err.NetworkError({
    provider,
    model,
    message: `${provider} connection failed: ${describe(
      typeof error === "object" && error !== null && "reason" in error ? { code: (error as { reason: unknown }).reason, cause: (error as { cause?: unknown }).cause } : error
    )}`
  })

export const make = (options: HttpOptions) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const pool = yield* KeyPool.KeyPool
    const { model, provider } = options
    // the auth headers of this API, hidden from the client's spans like `authorization`
    const authNames = Object.keys(options.auth(Redacted.make("probe"))).map((name) => name.toLowerCase())
    const hidden = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.locallyWith(effect, Headers.currentRedactedNames, (names) => [...names, ...authNames, /api[-_]?key|secret/i])

    const requestOf = (method: Method, url: string, lease: KeyPool.Lease, body: Body | undefined) => {
      const headers = { ...options.headers, ...(lease.key === undefined ? {} : options.auth(lease.key)) }
      const base = HttpClientRequest.make(method)(url).pipe(HttpClientRequest.setHeaders(headers))
      if (body === undefined) return base
      if (body._tag === "Json") return HttpClientRequest.bodyText(base, JSON.stringify(body.value), "application/json")
      if (body._tag === "JsonText") return HttpClientRequest.bodyText(base, body.text, "application/json")
      // written out rather than a FormData: every HttpClient sends text the same way
      const boundary = `effect-llm-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`
      if (body._tag === "Related") {
        const related = [
          `--${boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n${JSON.stringify(body.metadata)}\r\n`,
          `--${boundary}\r\ncontent-type: ${body.file.type}\r\n\r\n${body.file.text}\r\n`,
          `--${boundary}--\r\n`
        ]
        return HttpClientRequest.bodyText(base, related.join(""), `multipart/related; boundary=${boundary}`)
      }
      const parts = [
        ...Object.entries(body.fields).map(([name, value]) => `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
        `--${boundary}\r\ncontent-disposition: form-data; name="${body.file.field}"; filename="${body.file.name}"\r\ncontent-type: ${body.file.type}\r\n\r\n${body.file.text}\r\n`,
        `--${boundary}--\r\n`
      ]
      return HttpClientRequest.bodyText(base, parts.join(""), `multipart/form-data; boundary=${boundary}`)
    }

    /** A non-2xx reply as the API's typed error, without the key should the body echo it. */
    const failed = (response: HttpClientResponse.HttpClientResponse, lease: KeyPool.Lease) =>
      Effect.flatMap(Effect.orElseSucceed(response.text, () => ""), (text) =>
        Effect.fail(
          redactSecret(
            fromResponse({ provider, model, status: response.status, headers: response.headers, now: Date.now(), body: text.slice(0, 64 * 1024) }, options.readError),
            lease.key
          )
        ))

    const json: BatchHttp["json"] = (method, url, body) =>
      pool.withKey((lease) =>
        Effect.scoped(
          Effect.gen(function* () {
            const response = yield* hidden(client.execute(requestOf(method, url, lease, body))).pipe(
              Effect.mapError((error) => networkError(provider, model, error))
            )
            if (response.status >= 300) return yield* failed(response, lease)
            const text = yield* response.text.pipe(Effect.mapError((error) => networkError(provider, model, error)))
            if (text.trim().length === 0) return undefined
            try {
              return JSON.parse(text) as unknown
            } catch {
              return yield* Effect.fail(
                new Err.MalformedResponseError({ provider, model, message: `${provider} sent a reply that is not JSON`, excerpt: text.slice(0, 200) })
              )
            }
          })
        )
      ).pipe(Effect.mapError((error) => (Err.isLlmError(error) ? error : networkError(provider, model, error))))

    const lines: BatchHttp["lines"] = (url) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          // the lease lasts as long as the download
          const lease = yield* pool.acquire
          const response = yield* hidden(client.execute(requestOf("GET", url, lease, undefined))).pipe(
            Effect.mapError((error) => networkError(provider, model, error))
          )
          if (response.status >= 300) return yield* failed(response, lease)
          return response.stream.pipe(
            Stream.mapError((error) => networkError(provider, model, error)),
            Stream.decodeText(),
            Stream.splitLines,
            Stream.filter((line) => line.trim().length > 0)
          )
        }).pipe(Effect.mapError((error) => (Err.isLlmError(error) ? error : networkError(provider, model, error))))
      )

    return { provider, model, json, lines } satisfies BatchHttp
  })
