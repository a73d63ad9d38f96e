/**
 * Starts, for the Redis-backed tests, when the binaries are installed: a private
 * redis-server on a free loopback port, and a Redis Cluster of three masters on loopback
 * (`redis-server --cluster-enabled yes` ×3, joined by `redis-cli --cluster create`). Tests
 * read them with `inject("redisUrl")` and `inject("redisCluster")` (comma-separated node
 * urls), or REDIS_URL and REDIS_CLUSTER in subprocesses, and skip, saying so, when empty.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
    /** The cluster's node urls, comma-separated; empty without redis-server and redis-cli. */
    redisCluster: string
  }
}

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** A port free for a cluster node: the node also listens on port + 10000 (its bus). */
const freeClusterPort = async (taken: ReadonlyArray<number>): Promise<number> => {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 30000)
    if (taken.some((t) => Math.abs(t - port) < 2)) continue
    if ((await canListen(port)) && (await canListen(port + 10000))) return port
  }
  throw new Error("no free port pair for a Redis Cluster node")
}

const send = (port: number, command: string) =>
  new Promise<string>((resolve) => {
    const socket = net.connect(port, "127.0.0.1")
    let data = ""
    const done = () => {
      socket.destroy()
      resolve(data)
    }
    socket.setTimeout(500, done)
    socket.once("error", done)
    socket.on("data", (chunk) => {
      data += chunk.toString()
      if (data.endsWith("\r\n")) done()
    })
    socket.once("connect", () => socket.write(command))
  })

const ping = async (port: number) => (await send(port, "PING\r\n")).startsWith("+PONG")

const which = (bin: string): string | undefined => {
  for (const candidate of [bin, `/usr/bin/${bin}`, `/usr/sbin/${bin}`]) {
    try {
      const found = execFileSync("sh", ["-c", `command -v ${candidate}`]).toString().trim()
      if (found !== "") return found
    } catch {
      // not this one
    }
  }
  return undefined
}

const children: Array<ChildProcess> = []
const dirs: Array<string> = []

const startServer = async (bin: string, port: number, extra: ReadonlyArray<string>) => {
  const dir = mkdtempSync(join(tmpdir(), "effect-llm-redis-"))
  dirs.push(dir)
  children.push(spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...extra], {
    stdio: "ignore"
  }))
  for (let i = 0; i < 100; i++) {
    if (await ping(port)) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`redis-server did not start on ${port}`)
}

/** Three masters, all slots assigned, every node saying `cluster_state:ok`. */
const startCluster = async (server: string, cli: string): Promise<string> => {
  const ports: Array<number> = []
  for (let i = 0; i < 3; i++) ports.push(await freeClusterPort(ports))
  await Promise.all(ports.map((port) =>
    startServer(server, port, ["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", "5000"])
  ))
  await new Promise<void>((resolve, reject) =>
    execFile(
      cli,
      ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"],
      { timeout: 20_000 },
      (error, _stdout, stderr) => (error === null ? resolve() : reject(new Error(`redis-cli --cluster create failed: ${stderr || error.message}`)))
    )
  )
  for (let i = 0; i < 200; i++) {
    const states = await Promise.all(ports.map((port) => send(port, "CLUSTER INFO\r\n")))
    if (states.every((s) => s.includes("cluster_state:ok"))) return ports.map((p) => `redis://127.0.0.1:${p}`).join(",")
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error("the Redis Cluster did not reach cluster_state:ok")
}

export async function setup(project: TestProject) {
  const server = which("redis-server")
  if (server === undefined) {
    console.warn("[redis] redis-server is not installed: the Redis tests will skip (apt-get install -y redis-server)")
    project.provide("redisUrl", "")
    project.provide("redisCluster", "")
    return
  }
  const port = await freePort()
  await startServer(server, port, [])
  const url = `redis://127.0.0.1:${port}/0`
  process.env.REDIS_URL = url
  project.provide("redisUrl", url)

  const cli = which("redis-cli")
  let cluster = ""
  if (cli === undefined) {
    console.warn("[redis] redis-cli is not installed: the Redis Cluster tests will skip (apt-get install -y redis-tools)")
  } else {
    try {
      cluster = await startCluster(server, cli)
    } catch (error) {
      console.warn(`[redis] no Redis Cluster: the cluster tests will skip (${error instanceof Error ? error.message : String(error)})`)
    }
  }
  process.env.REDIS_CLUSTER = cluster
  project.provide("redisCluster", cluster)
}

export async function teardown() {
  for (const child of children) child.kill("SIGTERM")
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
}
