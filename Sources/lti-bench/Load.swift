import Foundation
import NIOCore
import Synchronization

/// How one timed phase went.
struct PhaseTiming: Sendable, Codable {
    var seconds: Double
    var errors: Int
    /// Request latencies in milliseconds, sorted.
    var latencies: [Double]
    /// CPU time the server under test spent during the phase (when its pid is known).
    var serverCPUSeconds: Double?
    /// CPU time the load generator itself spent during the phase.
    var generatorCPUSeconds: Double?
    /// The server's threads during the phase, by name (when its pid is known).
    var serverThreads: [ThreadUse]?

    func percentile(_ p: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        return latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)]
    }
}

/// Runs a plan's requests with `concurrency` connections on the generator's event loops, timing each;
/// bounded by the plan's count. With `pid`, also measures the CPU time the server spent meanwhile.
enum Load {
    static func run(_ plan: LoadPlan, concurrency: Int, group: any EventLoopGroup, serverPID: Int32?) async throws -> PhaseTiming {
        let address = try SocketAddress.makeAddressResolvingHost(plan.host, port: plan.port)
        let cursor = Cursor()
        let serverCPU0 = serverPID.flatMap(CPUTime.tree)
        let threads0 = serverPID.map(ThreadUse.sample)
        let ownCPU0 = CPUTime.own()
        let started = ContinuousClock.now
        let drivers = (0..<min(concurrency, plan.count)).map { _ in
            ConnectionDriver.start(plan: plan, cursor: cursor, address: address, on: group.next())
        }
        var latencies: [Double] = []
        latencies.reserveCapacity(plan.count)
        var errors = 0
        for driver in drivers {
            let (some, failed) = try await driver.get()
            latencies += some
            errors += failed
        }
        let elapsed = ContinuousClock.now - started
        var timing = PhaseTiming(
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            errors: errors, latencies: latencies.sorted())
        if let before = serverCPU0, let after = serverPID.flatMap(CPUTime.tree) { timing.serverCPUSeconds = after - before }
        if let before = ownCPU0, let after = CPUTime.own() { timing.generatorCPUSeconds = after - before }
        if let before = threads0, let pid = serverPID { timing.serverThreads = ThreadUse.difference(ThreadUse.sample(pid), since: before) }
        return timing
    }
}

/// CPU time (user + system) from /proc, in seconds; the clock tick is 10 ms.
enum CPUTime {
    /// This process's CPU time.
    static func own() -> Double? { ProcStat.read("/proc/self/stat")?.cpuSeconds }

    /// The CPU time of `pid` and its descendants (a pre-forking server's workers), or nil when unreadable.
    static func tree(_ pid: Int32) -> Double? {
        let times = ProcessTree.members(of: pid).compactMap { ProcStat.read("/proc/\($0)/stat")?.cpuSeconds }
        return times.isEmpty ? nil : times.reduce(0, +)
    }
}

/// A process's or thread's `/proc/…/stat`: its command name and its CPU time so far.
enum ProcStat {
    /// The name and CPU time (user + system, in seconds) in the stat file at `path`; nil when unreadable.
    static func read(_ path: String) -> (name: String, cpuSeconds: Double)? {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8),
            let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (String(stat[stat.index(after: open)..<close]), (user + system) / Double(sysconf(Int32(_SC_CLK_TCK))))
    }
}

/// What a server's threads of one name did during a phase (from /proc/PID/task/TID): CPU time, time spent ready but
/// waiting for a core (`schedstat`), and voluntary context switches — how often they blocked (on a lock, a condition,
/// I/O) rather than ran out of work. Names have their digits replaced by `#`, so a pool's threads form one row.
struct ThreadUse: Sendable, Codable {
    var name: String
    var threads: Int
    var cpuSeconds: Double
    var runQueueSeconds: Double
    var voluntarySwitches: Int

    /// The threads of `pid` and its descendants now, by thread id.
    static func sample(_ pid: Int32) -> [String: ThreadUse] {
        var byTask: [String: ThreadUse] = [:]
        for member in ProcessTree.members(of: pid) {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(member)/task")) ?? []
            for task in tasks {
                let folder = "/proc/\(member)/task/\(task)"
                guard let stat = ProcStat.read(folder + "/stat") else { continue }
                let name = stat.name.map { $0.isNumber ? "#" : String($0) }.joined()
                let schedstat = (try? String(contentsOfFile: folder + "/schedstat", encoding: .utf8))?.split(separator: " ") ?? []
                let waiting = schedstat.count > 1 ? (Double(schedstat[1]) ?? 0) / 1e9 : 0
                let status = (try? String(contentsOfFile: folder + "/status", encoding: .utf8)) ?? ""
                let switches =
                    status.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                byTask["\(member)/\(task)"] = ThreadUse(
                    name: name, threads: 1, cpuSeconds: stat.cpuSeconds, runQueueSeconds: waiting, voluntarySwitches: switches)
            }
        }
        return byTask
    }

    /// Each name's use between two samples (threads that started meanwhile count from zero), busiest first.
    static func difference(_ after: [String: ThreadUse], since before: [String: ThreadUse]) -> [ThreadUse] {
        var byName: [String: ThreadUse] = [:]
        for (task, now) in after {
            let then = before[task]
            var row = byName[now.name] ?? ThreadUse(name: now.name, threads: 0, cpuSeconds: 0, runQueueSeconds: 0, voluntarySwitches: 0)
            row.threads += 1
            row.cpuSeconds += now.cpuSeconds - (then?.cpuSeconds ?? 0)
            row.runQueueSeconds += now.runQueueSeconds - (then?.runQueueSeconds ?? 0)
            row.voluntarySwitches += now.voluntarySwitches - (then?.voluntarySwitches ?? 0)
            byName[now.name] = row
        }
        return byName.values.filter { $0.cpuSeconds > 0 || $0.voluntarySwitches > 0 }.sorted { $0.cpuSeconds > $1.cpuSeconds }
    }
}

/// A process and its descendants, from /proc/PID/task/TID/children.
enum ProcessTree {
    static func members(of pid: Int32) -> [Int32] {
        var members: [Int32] = []
        var pending = [pid]
        while let next = pending.popLast(), members.count < 256 {
            members.append(next)
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(next)/task")) ?? []
            for task in tasks {
                guard let children = try? String(contentsOfFile: "/proc/\(next)/task/\(task)/children", encoding: .utf8) else { continue }
                pending += children.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
        }
        return members
    }
}

/// Hands out operation indices to the workers.
final class Cursor: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// One scenario's result, as a table row and as JSON.
struct BenchResult: Sendable, Codable {
    var label: String
    var scenario: String
    var count: Int
    var concurrency: Int
    var requestsPerSecond: Double
    var p50: Double
    var p90: Double
    var p99: Double
    var max: Double
    var errors: Int
    var loginSeconds: Double?
    var loginErrors: Int?
    var flowsPerSecond: Double?
    var peakRSSMiB: Double?
    var rssAfterFirstRoundMiB: Double?
    var rssAtEndMiB: Double?
    /// The server's CPU time per timed request (per login+launch flow for launches), in microseconds.
    var serverCPUMicroseconds: Double?
    /// The load generator's own CPU time per timed request (or flow), in microseconds.
    var generatorCPUMicroseconds: Double?
    /// What the CPU figures are divided by: "request" or "flow".
    var cpuUnit: String?
    /// The server's CPU time per request of the timed phase alone (for flows: per launch POST), in microseconds.
    var phaseCPUMicroseconds: Double?
    /// How many cores the server kept busy during the timed phase (CPU seconds ÷ wall seconds).
    var serverCores: Double?
    /// The server's threads during the timed phase: per name, cores busy, seconds waiting for a core, blocking waits.
    var serverThreads: [ThreadUse]?
    /// The timed phase's wall time, in seconds.
    var phaseSeconds: Double?
    var date = ISO8601DateFormatter().string(from: Date())

    init(label: String, scenario: String, count: Int, concurrency: Int, phase: PhaseTiming) {
        self.label = label
        self.scenario = scenario
        self.count = count
        self.concurrency = concurrency
        requestsPerSecond = Double(phase.latencies.count - phase.errors) / Swift.max(phase.seconds, 1e-9)
        p50 = phase.percentile(0.50)
        p90 = phase.percentile(0.90)
        p99 = phase.percentile(0.99)
        max = phase.latencies.last ?? 0
        errors = phase.errors
        addCPU(of: [phase], per: phase.latencies.count)
        if let cpu = phase.serverCPUSeconds, !phase.latencies.isEmpty {
            phaseCPUMicroseconds = cpu * 1e6 / Double(phase.latencies.count)
            serverCores = cpu / Swift.max(phase.seconds, 1e-9)
        }
        serverThreads = phase.serverThreads
        phaseSeconds = phase.seconds
    }

    /// Sets the CPU figures from the timed phases, divided over `units` requests or flows.
    mutating func addCPU(of phases: [PhaseTiming], per units: Int, unit: String = "request") {
        guard units > 0 else { return }
        cpuUnit = unit
        let server = phases.compactMap(\.serverCPUSeconds), own = phases.compactMap(\.generatorCPUSeconds)
        serverCPUMicroseconds = server.count == phases.count ? server.reduce(0, +) * 1e6 / Double(units) : nil
        generatorCPUMicroseconds = own.count == phases.count ? own.reduce(0, +) * 1e6 / Double(units) : nil
    }

    var table: String {
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var line = "\(label): \(count) × \(scenario), concurrency \(concurrency): \(f(requestsPerSecond)) req/s"
        if let flowsPerSecond { line += " (full login+launch flows: \(f(flowsPerSecond))/s)" }
        line += " · latency ms p50 \(f(p50)) p90 \(f(p90)) p99 \(f(p99)) max \(f(max)) · errors \(errors)"
        if let loginErrors, loginErrors > 0 { line += " · login errors \(loginErrors)" }
        if let serverCPUMicroseconds { line += " · server CPU \(f(serverCPUMicroseconds)) µs/\(cpuUnit ?? "request")" }
        if let generatorCPUMicroseconds { line += " · generator CPU \(f(generatorCPUMicroseconds)) µs" }
        if let phaseCPUMicroseconds, cpuUnit == "flow" { line += " · server CPU \(f(phaseCPUMicroseconds)) µs/launch POST" }
        if let serverCores { line += " · server cores busy \(String(format: "%.2f", serverCores))" }
        if let peakRSSMiB { line += " · server peak RSS \(f(peakRSSMiB)) MiB" }
        if let first = rssAfterFirstRoundMiB, let end = rssAtEndMiB { line += " · RSS after round 1 \(f(first)) MiB, at end \(f(end)) MiB" }
        if let threads = serverThreads, let seconds = phaseSeconds, seconds > 0 {
            for thread in threads.prefix(8) {
                line +=
                    "\n    \(thread.name) ×\(thread.threads): cores \(String(format: "%.2f", thread.cpuSeconds / seconds))"
                    + " · waiting for a core \(String(format: "%.2f", thread.runQueueSeconds / seconds)) · blocking waits \(Int(Double(thread.voluntarySwitches) / seconds))/s"
            }
        }
        return line
    }
}

/// Samples the resident memory of a process and its descendants (summed) from /proc every 100 ms.
actor RSSSampler {
    private static func residentKiB(_ pid: Int32) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return line.split(separator: " ").compactMap({ Double($0) }).first
    }

    let pid: Int32?
    private(set) var peakMiB: Double?
    private(set) var currentMiB: Double?

    init(pid: Int32?) { self.pid = pid }

    func run() async {
        guard let pid else { return }
        var members = ProcessTree.members(of: pid)
        var round = 0
        while !Task.isCancelled {
            if round % 50 == 0 { members = ProcessTree.members(of: pid) }  // workers may be replaced
            round += 1
            let kib = members.compactMap(Self.residentKiB).reduce(0, +)
            if kib > 0 {
                peakMiB = Swift.max(peakMiB ?? 0, kib / 1024)
                currentMiB = kib / 1024
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
