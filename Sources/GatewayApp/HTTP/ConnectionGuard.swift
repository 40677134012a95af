import HTTPTypes
import HummingbirdCore
import Metrics
import NIOCore
import NIOHTTPTypes
import Synchronization

/// A request whose body did not arrive within `GATEWAY_REQUEST_READ_SECONDS` of its head: its route reads the
/// body, gets this error and answers 408.
struct RequestReadTimeout: Error, CustomStringConvertible {
    var description: String { "the request body did not arrive in time" }
}

/// Puts every client connection on a clock, so that no client can hold a connection (a descriptor, a task, the
/// memory of a half-read request) without sending what it promised.
///
/// - Waiting for a request: a connection that sends no complete request head within the idle timeout, after it
///   opens or after the previous answer, is closed (keep-alive idle, and a slowly trickled head).
/// - Reading a request: a body that has not fully arrived within the read timeout of its head fails its route with
///   ``RequestReadTimeout`` (answered 408); the connection closes right after that answer, or after a short grace
///   if nothing answers.
/// - An answer carrying `Connection: close` (refusals of oversized, malformed or late requests) closes the
///   connection as soon as it is written, so a refused upload is never read to its end and its socket is never
///   left half-closed.
///
/// Placed after the HTTP/1 codec; all of it runs on the channel's event loop.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The two clocks of a connection.
    struct Timeouts: Sendable {
        var idle: TimeAmount
        var requestRead: TimeAmount
        /// How long a connection whose request timed out may take to answer before it is closed anyway.
        var grace: TimeAmount = .seconds(3)
    }

    private let timeouts: Timeouts
    /// Requests whose head arrived and whose answer has not been written to its end.
    private var openRequests = 0
    private var readingBody = false {
        didSet { if readingBody != oldValue { connections.reading(readingBody) } }
    }
    private let connections: ConnectionCount
    private var closeAfterAnswer = false
    /// The answer that closes the connection is written: whatever the client still sends is dropped.
    private var discardingInput = false
    private var timer: Scheduled<Void>?

    init(timeouts: Timeouts, connections: ConnectionCount) {
        self.timeouts = timeouts
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { waitForRequest(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        waitForRequest(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        readingBody = false
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !discardingInput else { return }
        switch unwrapInboundIn(data) {
        case .head:
            openRequests += 1
            readingBody = true
            schedule(context, after: timeouts.requestRead) { handler, context in handler.requestReadTimedOut(context) }
        case .body:
            break
        case .end:
            readingBody = false
            // Answered already (a refusal before the body was read): the next request may come.
            if openRequests == 0 { waitForRequest(context) } else { cancelTimer() }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            if head.headerFields[.connection]?.lowercased() == "close" { closeAfterAnswer = true }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            openRequests = max(0, openRequests - 1)
            if closeAfterAnswer {
                closeAfterWriting(context, data, promise: promise)
            } else {
                context.write(data, promise: promise)
                if openRequests == 0, !readingBody { waitForRequest(context) }
            }
        }
    }

    /// Writes the answer's end, then closes: first the sending side, so the client reads the whole answer, while
    /// what it still sends is dropped; the whole connection after ``Timeouts/grace`` (or when the client closes). Closing at
    /// once would reset the connection while unread request bytes are pending, and the client could lose the answer.
    private func closeAfterWriting(_ context: ChannelHandlerContext, _ data: NIOAny, promise: EventLoopPromise<Void>?) {
        discardingInput = true
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { [channel = context.channel] _ in channel.close(mode: .output, promise: nil) }
        context.writeAndFlush(data, promise: written)
        promise.map { written.futureResult.cascade(to: $0) }
        schedule(context, after: timeouts.grace) { _, context in context.close(promise: nil) }
    }

    /// No request is open: the next head must come within the idle timeout.
    private func waitForRequest(_ context: ChannelHandlerContext) {
        schedule(context, after: timeouts.idle) { _, context in
            ConnectionGuard.closed(reason: "idle")
            context.close(promise: nil)
        }
    }

    private func requestReadTimedOut(_ context: ChannelHandlerContext) {
        guard readingBody else { return }
        Self.closed(reason: "request_read_timeout")
        closeAfterAnswer = true
        // The route reading the body gets the error and answers 408 with `Connection: close`; a route that is not
        // reading gets a short grace, then the connection closes regardless.
        context.fireErrorCaught(RequestReadTimeout())
        schedule(context, after: timeouts.grace) { _, context in context.close(promise: nil) }
    }

    private func schedule(
        _ context: ChannelHandlerContext, after delay: TimeAmount, _ action: @escaping (ConnectionGuard, ChannelHandlerContext) -> Void
    ) {
        cancelTimer()
        let loop = context.eventLoop.assumeIsolatedUnsafeUnchecked()
        timer = loop.scheduleTask(in: delay) { [self, context] in
            timer = nil
            action(self, context)
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    private static func closed(reason: String) {
        Counter(label: "gateway_connections_closed_total", dimensions: [("reason", reason)]).increment()
    }
}

@available(*, unavailable)
extension ConnectionGuard: Sendable {}

/// The client connections a gateway holds: how many are open, the most ever open at once, and how often the cap
/// stopped new ones from being accepted (they wait in the listen queue until one closes).
public final class ConnectionCount: Sendable {
    private struct Counts { var open = 0, peak = 0, capReached = 0, reading = 0 }
    private let counts = Mutex(Counts())
    private let openGauge = Gauge(label: "gateway_connections_open")
    private let capCounter = Counter(label: "gateway_connections_cap_reached_total")
    private let readingGauge = Gauge(label: "gateway_requests_reading")
    /// The most client connections open at once.
    public let cap: Int

    init(cap: Int) { self.cap = cap }

    /// Client connections open now.
    public var open: Int { counts.withLock { $0.open } }
    /// The most client connections that were open at once.
    public var peak: Int { counts.withLock { $0.peak } }
    /// How often the gateway stopped accepting because ``cap`` connections were open.
    public var capReached: Int { counts.withLock { $0.capReached } }
    /// Requests whose head has arrived and whose body is still being read.
    public var reading: Int { counts.withLock { $0.reading } }

    fileprivate func reading(_ started: Bool) {
        readingGauge.record(
            counts.withLock { counts in
                counts.reading += started ? 1 : -1
                return counts.reading
            })
    }

    fileprivate func opened() {
        let open = counts.withLock { counts in
            counts.open += 1
            counts.peak = max(counts.peak, counts.open)
            return counts.open
        }
        openGauge.record(open)
    }

    fileprivate func closed() {
        openGauge.record(
            counts.withLock { counts in
                counts.open -= 1
                return counts.open
            })
    }

    fileprivate func accepting() -> Bool {
        let accepting = counts.withLock { counts in
            if counts.open < cap { return true }
            counts.capReached += 1
            return false
        }
        if !accepting { capCounter.increment() }
        return accepting
    }

    /// The listener's view: Hummingbird asks it before accepting each connection.
    var delegate: some AvailableConnectionsDelegate { Delegate(count: self) }

    private struct Delegate: AvailableConnectionsDelegate {
        let count: ConnectionCount
        mutating func connectionOpened() { count.opened() }
        mutating func connectionClosed() { count.closed() }
        func isAcceptingNewConnections() -> Bool { count.accepting() }
    }
}
