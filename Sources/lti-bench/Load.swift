import Foundation
import Synchronization

/// How one timed phase went.
struct PhaseTiming: Sendable, Codable {
    var seconds: Double
    var errors: Int
    /// Request latencies in milliseconds, sorted.
    var latencies: [Double]

    func percentile(_ p: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        return latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)]
    }
}

/// Runs `count` operations with `concurrency` workers, timing each; bounded by `count`.
enum Load {
    static func run(count: Int, concurrency: Int, _ operation: @escaping @Sendable (Int) async throws -> Bool) async -> PhaseTiming {
        let next = Cursor()
        let started = ContinuousClock.now
        let results = await withTaskGroup(of: ([Double], Int).self) { group in
            for _ in 0..<min(concurrency, count) {
                group.addTask {
                    var latencies: [Double] = []
                    var errors = 0
                    while true {
                        let i = next.take()
                        guard i < count else { break }
                        let t0 = ContinuousClock.now
                        let ok = (try? await operation(i)) ?? false
                        let elapsed = ContinuousClock.now - t0
                        latencies.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
                        if !ok { errors += 1 }
                    }
                    return (latencies, errors)
                }
            }
            var all: ([Double], Int) = ([], 0)
            for await (latencies, errors) in group {
                all.0 += latencies
                all.1 += errors
            }
            return all
        }
        let elapsed = ContinuousClock.now - started
        return PhaseTiming(seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                           errors: results.1, latencies: results.0.sorted())
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
    }

    var table: String {
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var line = "\(label): \(count) × \(scenario), concurrency \(concurrency): \(f(requestsPerSecond)) req/s"
        if let flowsPerSecond { line += " (full login+launch flows: \(f(flowsPerSecond))/s)" }
        line += " · latency ms p50 \(f(p50)) p90 \(f(p90)) p99 \(f(p99)) max \(f(max)) · errors \(errors)"
        if let loginErrors, loginErrors > 0 { line += " · login errors \(loginErrors)" }
        if let peakRSSMiB { line += " · server peak RSS \(f(peakRSSMiB)) MiB" }
        if let first = rssAfterFirstRoundMiB, let end = rssAtEndMiB { line += " · RSS after round 1 \(f(first)) MiB, at end \(f(end)) MiB" }
        return line
    }
}

/// Samples a process's resident memory from /proc every 100 ms.
actor RSSSampler {
    let pid: Int32?
    private(set) var peakMiB: Double?
    private(set) var currentMiB: Double?

    init(pid: Int32?) { self.pid = pid }

    func run() async {
        guard let pid else { return }
        while !Task.isCancelled {
            if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
               let kib = line.split(separator: " ").compactMap({ Double($0) }).first {
                peakMiB = Swift.max(peakMiB ?? 0, kib / 1024)
                currentMiB = kib / 1024
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
