/**
 * Starts a private redis-server on a free loopback port for the Redis-backed tests, when
 * the binary is installed. Tests read the URL with `inject("redisUrl")` (or REDIS_URL in
 * subprocesses) and skip, saying so, when it is empty.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
  }
}

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
    socket.once("error", () => resolve(false))
    socket.once("data", (data) => {
      socket.destroy()
      resolve(data.toString().startsWith("+PONG"))
    })
    socket.once("connect", () => socket.write("PING\r\n"))
  })

const which = (bin: string): string | undefined => {
  try {
    return execFileSync("sh", ["-c", `command -v ${bin}`]).toString().trim() || undefined
  } catch {
    return undefined
  }
}

let child: ChildProcess | undefined
let dir: string | undefined

export async function setup(project: TestProject) {
  const bin = which("redis-server") ?? (["/usr/bin/redis-server", "/usr/sbin/redis-server"].find((p) => which(p)))
  if (bin === undefined) {
    console.warn("[redis] redis-server is not installed: the Redis tests will skip (apt-get install -y redis-server)")
    project.provide("redisUrl", "")
    return
  }
  const port = await freePort()
  dir = mkdtempSync(join(tmpdir(), "effect-llm-redis-"))
  child = spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: "ignore"
  })
  for (let i = 0; i < 100; i++) {
    if (await ping(port)) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const url = `redis://127.0.0.1:${port}/0`
  process.env.REDIS_URL = url
  project.provide("redisUrl", url)
}

export async function teardown() {
  child?.kill("SIGTERM")
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}
