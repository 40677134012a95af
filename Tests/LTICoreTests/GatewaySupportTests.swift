import GatewaySupport
import LTICore
import LTITestSupport
import Synchronization
import Testing

@Suite("Form encoding")
struct FormEncodingTests {
    @Test("unreserved bytes stay, every other byte becomes %XX (UTF-8, upper case)")
    func percentEncoding() {
        #expect(FormEncoding.percentEncode("AZaz09-._~") == "AZaz09-._~")
        #expect(FormEncoding.percentEncode("a b/ü+&=%") == "a%20b%2F%C3%BC%2B%26%3D%25")
        #expect(FormEncoding.percentEncode("") == "")
        #expect(
            FormEncoding.encode([("redirect_uri", "https://t/lti/launch?x=1"), ("state", "s")])
                == "redirect_uri=https%3A%2F%2Ft%2Flti%2Flaunch%3Fx%3D1&state=s")
    }
}

@Suite("HTML escaping")
struct HTMLEscapingTests {
    @Test("the five characters that end text or an attribute become entities; the rest, UTF-8 included, stays")
    func escaping() {
        #expect(HTMLEscaping.escape(#"<a href="x" title='y'>Q&A</a> é"#) == "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Q&amp;A&lt;/a&gt; é")
        #expect(HTMLEscaping.escape("plain") == "plain" && HTMLEscaping.entity(for: UInt8(ascii: "a")) == nil)
    }
}

@Suite("Backoff")
struct BackoffTests {
    @Test("doubles from the base per attempt and stops at the cap")
    func bound() {
        let backoff = Backoff(base: .milliseconds(250), cap: .seconds(2), jitter: .none)
        #expect(
            (1...6).map { backoff.delay(afterAttempt: $0) } == [
                .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(2), .seconds(2),
            ])
        #expect(backoff.delay(afterAttempt: 0) == .milliseconds(250) && backoff.delay(afterAttempt: 1000) == .seconds(2))
    }

    @Test("full jitter stays within zero and the bound; proportional within its fraction of the bound")
    func jitter() {
        let full = Backoff(base: .seconds(1), cap: .seconds(8), jitter: .full)
        let proportional = Backoff(base: .seconds(30), cap: .seconds(3600), jitter: .proportional(0.2))
        for attempt in 1...200 {
            let fullDelay = full.delay(afterAttempt: attempt % 6 + 1)
            #expect(fullDelay >= .zero && fullDelay <= full.bound(afterAttempt: attempt % 6 + 1))
            let spread = proportional.delay(afterAttempt: 2)
            #expect(spread >= .seconds(48) && spread <= .seconds(72))
        }
        #expect(proportional.delay(afterAttempt: 20) <= .seconds(4320))
    }
}

@Suite("Loopback hosts")
struct LoopbackTests {
    @Test("127.0.0.0/8, ::1 and localhost are this machine; nothing else is")
    func loopback() {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"] { #expect(Loopback.isLoopback(host), "\(host)") }
        for host in ["10.0.0.1", "127.0.0.1.example.com", "localhost.example.com", "::2", "db.example.edu", "127.0.0", "0.0.0.0"] {
            #expect(!Loopback.isLoopback(host), "\(host)")
        }
    }
}

@Suite("Deadlines")
struct DeadlineTests {
    /// Work that does not answer cancellation: it ends only when the test lets it.
    final class Gate: Sendable {
        private let waiting = Mutex<CheckedContinuation<Void, Never>?>(nil)
        private let opened = Mutex(false)
        func wait() async {
            await withCheckedContinuation { continuation in
                if opened.withLock({ $0 }) { continuation.resume() } else { waiting.withLock { $0 = continuation } }
            }
        }
        func open() {
            opened.withLock { $0 = true }
            waiting.withLock { waiting in
                defer { waiting = nil }
                return waiting
            }?.resume()
        }
    }

    @Test("work that finishes in time is never reported late: 20,000 quick calls, none a DeadlineExceeded")
    func neverSpuriouslyLate() async throws {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var late = 0
                    for i in 0..<5000 {
                        do { _ = try await withDeadline(.seconds(10)) { worker + i } } catch is DeadlineExceeded { late += 1 }
                    }
                    return late
                }
            }
            var late = 0
            for try await count in group { late += count }
            #expect(late == 0, "\(late) calls that finished at once were reported past their deadline")
        }
    }

    @Test("the result within the deadline is returned; past it, DeadlineExceeded — even when the work ignores cancellation")
    func bounded() async throws {
        #expect(try await withDeadline(.seconds(5)) { 42 } == 42)
        let gate = Gate()
        Task {  // a regression (waiting for the work) fails the time check below instead of hanging the suite
            try? await Task.sleep(for: .seconds(10))
            gate.open()
        }
        let started = ContinuousClock.now
        do {
            _ = try await withDeadline(.milliseconds(100)) {
                await gate.wait()
                return 1
            }
            Issue.record("no deadline")
        } catch is DeadlineExceeded {
            #expect(ContinuousClock.now - started < .seconds(5), "the caller waited for the work")
        }
        gate.open()
        await #expect(throws: CancellationError.self) {
            let task = Task { try await withDeadline(.seconds(30)) { try await Task.sleep(for: .seconds(30)) } }
            task.cancel()
            try await task.value
        }
    }

    @Test("a deadline due before the one the timers sleep for fires on time, not when the later one is due")
    func earlierDeadlineWakesTheTimers() async throws {
        let timers = DeadlineTimers()
        let late = timers.schedule(at: .now + .seconds(60)) {}
        let fired = Mutex(false)
        let started = ContinuousClock.now
        _ = timers.schedule(at: .now + .milliseconds(50)) { fired.withLock { $0 = true } }
        #expect(await eventually { fired.withLock { $0 } }, "the 50 ms deadline did not fire")
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(timers.pendingCount == 1, "the 60 s deadline is still pending")
        timers.cancel(late)
        #expect(timers.pendingCount == 0)
    }

    @Test("a cancelled deadline never fires, and finished calls leave nothing pending")
    func cancelledNeverFires() async throws {
        let timers = DeadlineTimers()
        let fired = Mutex(0)
        for _ in 0..<1000 {
            let timer = timers.schedule(at: .now + .milliseconds(20)) { fired.withLock { $0 += 1 } }
            timers.cancel(timer)
        }
        let witness = Mutex(false)
        _ = timers.schedule(at: .now + .milliseconds(40)) { witness.withLock { $0 = true } }
        // The witness is due after every cancelled one: once it fired, any of them that was going to fire has.
        #expect(await eventually { witness.withLock { $0 } }, "the witness deadline did not fire")
        #expect(fired.withLock { $0 } == 0)
        #expect(timers.pendingCount == 0)
        for i in 0..<500 { _ = try await withDeadline(.seconds(30)) { i } }
        #expect(DeadlineTimers.shared.pendingCount < 500, "finished calls cancel their deadlines")
    }

    @Test("cancelled deadlines do not pile up while others are pending: the schedule is kept near what is pending")
    func scheduleStaysBounded() {
        let timers = DeadlineTimers()
        let long = timers.schedule(at: .now + .seconds(600)) {}
        for _ in 0..<20_000 { timers.cancel(timers.schedule(at: .now + .seconds(300)) {}) }
        #expect(timers.pendingCount == 1)
        #expect(timers.scheduledCount <= 2 + 1024 + 1, "\(timers.scheduledCount) entries for one pending deadline")
        timers.cancel(long)
    }
}
