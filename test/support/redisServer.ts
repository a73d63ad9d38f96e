/**
 * A redis-server of a test's own, on a free loopback port, that the test may kill, restart
 * on the same port, freeze (SIGSTOP) and thaw (SIGCONT). It is released (thawed and killed)
 * whatever ends the test: by the scope's finalizer; by vitest's `onTestFinished` when the test
 * times out with its fiber stuck, so that the scope never closes; and when the process exits.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { onTestFinished } from "vitest"

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const ping = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, "127.0.0.1")
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
    socket.once("connect", () => socket.write("PING\r\n"))
  })

const binary = (): string | undefined => {
  for (const candidate of ["redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server"]) {
    try {
      const found = execFileSync("sh", ["-c", `command -v ${candidate}`]).toString().trim()
      if (found !== "") return found
    } catch {
      // not this one
    }
  }
  return undefined
}

/** The process state letter from /proc (`T`: stopped), or undefined without /proc. */
const stateOf = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).charAt(0)
  } catch {
    return undefined
  }
}

export interface RedisServer {
  readonly url: string
  /** SIGKILL, and waits until the port refuses connections. */
  readonly kill: Effect.Effect<void>
  /** Starts a fresh server on the same port: empty, unless persisted (`redisServerPersisted`). */
  readonly start: Effect.Effect<void>
  /** SIGSTOP. The signal is delivered asynchronously: see `stopped`. */
  readonly freeze: Effect.Effect<void>
  /**
   * After `freeze`: waits until the process is stopped (where /proc exists), so that from
   * then on it surely answers nothing until `thaw`.
   */
  readonly stopped: Effect.Effect<void>
  readonly thaw: Effect.Effect<void>
}

/**
 * `redisServer` that keeps its data across `kill` and `start`: an append-only file synced on
 * every write, as a Redis that holds budgets should run.
 */
export const redisServerPersisted: Effect.Effect<RedisServer, never, Scope.Scope> = Effect.suspend(() => redisServerWith(true))

export const redisServer: Effect.Effect<RedisServer, never, Scope.Scope> = Effect.suspend(() => redisServerWith(false))

const redisServerWith = (persist: boolean): Effect.Effect<RedisServer, never, Scope.Scope> => Effect.gen(function* () {
  const bin = binary()
  if (bin === undefined) return yield* Effect.dieMessage("redis-server is not installed")
  const port = yield* Effect.promise(freePort)
  const dir = mkdtempSync(join(tmpdir(), "effect-llm-redis-outage-"))
  let child: ChildProcess | undefined

  const start = Effect.promise(async () => {
    const persistence = persist ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]
    child = spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", dir], {
      stdio: "ignore"
    })
    for (let i = 0; i < 200; i++) {
      if (await ping(port)) return
      await new Promise((r) => setTimeout(r, 25))
    }
    throw new Error(`redis-server did not start on ${port}`)
  })
  const kill = Effect.promise(async () => {
    const current = child
    child = undefined
    if (current === undefined || current.exitCode !== null) return
    const exited = new Promise((r) => current.once("exit", r))
    current.kill("SIGCONT")
    current.kill("SIGKILL")
    await exited
  })
  const signal = (name: NodeJS.Signals) => Effect.sync(() => void child?.kill(name))
  // at once, without waiting: for hooks that cannot wait for a fiber that may never end
  const release = () => {
    const current = child
    child = undefined
    if (current !== undefined && current.exitCode === null) {
      current.kill("SIGCONT")
      current.kill("SIGKILL")
    }
    rmSync(dir, { recursive: true, force: true })
  }
  // a signal is delivered asynchronously: the server may still be running a command when kill returns
  const stopped = Effect.promise(async () => {
    const current = child
    if (current?.pid === undefined || current.exitCode !== null) return
    for (let i = 0; i < 400; i++) {
      const state = stateOf(current.pid)
      if (state === undefined || state === "T" || state === "t") return
      await new Promise((r) => setTimeout(r, 5))
    }
    throw new Error(`redis-server ${current.pid} did not stop`)
  })

  process.on("exit", release)
  try {
    // runs before @effect/vitest's own hook, which interrupts the test's fiber and waits for it
    onTestFinished(release)
  } catch {
    // not inside a vitest test: the finalizer and the exit hook remain
  }
  yield* Effect.addFinalizer(() =>
    Effect.zipRight(kill, Effect.sync(() => {
      process.removeListener("exit", release)
      rmSync(dir, { recursive: true, force: true })
    }))
  )
  yield* start
  return { url: `redis://127.0.0.1:${port}/0`, kill, start, freeze: signal("SIGSTOP"), stopped, thaw: signal("SIGCONT") }
})
