import NIOCore
import NIOHTTP1
import NIOPosix

/// One request the generator sends, built from the flow's index.
struct BenchRequest: Sendable {
    var method: HTTPMethod = .GET
    var uri: String
    var headers: HTTPHeaders = [:]
    var body: ByteBuffer?
}

/// What the generator keeps of a response: its status and headers (bodies are read and dropped).
struct BenchResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
}

/// What a timed phase asks of the generator: where to send, how many, how to build each request and judge
/// each response. `request` and `check` run on the generator's event loop and must be cheap.
struct LoadPlan: Sendable {
    var host: String
    var port: Int
    var count: Int
    var timeout: TimeAmount = .seconds(30)
    var request: @Sendable (Int) -> BenchRequest
    var check: @Sendable (Int, BenchResponse) -> Bool
}

/// Plays one browser: sends the plan's requests one after another on one keep-alive connection, reconnecting
/// when the server closes it (gunicorn's sync workers close after every response), taking flow indices from
/// the shared cursor until they run out. Runs entirely on its event loop: no task switch per request, so the
/// generator spends little of the machine's two cores that the server under test needs.
final class ConnectionDriver {
    private let plan: LoadPlan
    private let cursor: Cursor
    private let eventLoop: any EventLoop
    private let address: SocketAddress
    private let finished: EventLoopPromise<([Double], Int)>
    private var latencies: [Double] = []
    private var errors = 0
    private var channel: (any Channel)?
    private var inFlight: (index: Int, started: NIODeadline, timeout: Scheduled<Void>)?

    init(plan: LoadPlan, cursor: Cursor, address: SocketAddress, eventLoop: any EventLoop) {
        self.plan = plan
        self.cursor = cursor
        self.address = address
        self.eventLoop = eventLoop
        finished = eventLoop.makePromise()
    }

    /// Starts the driver on its event loop; the future gives its latencies (ms) and error count when the cursor runs out.
    static func start(plan: LoadPlan, cursor: Cursor, address: SocketAddress, on eventLoop: any EventLoop) -> EventLoopFuture<([Double], Int)> {
        eventLoop.flatSubmit {
            let driver = ConnectionDriver(plan: plan, cursor: cursor, address: address, eventLoop: eventLoop)
            driver.sendNext()
            return driver.finished.futureResult
        }
    }

    private func sendNext() {
        let index = cursor.take()
        guard index < plan.count else {
            channel?.close(promise: nil)
            channel = nil
            finished.succeed((latencies, errors))
            return
        }
        let started = NIODeadline.now()
        if let channel, channel.isActive {
            send(index, started: started, on: channel)
        } else {
            connect { [self] result in
                switch result {
                case .success(let channel): send(index, started: started, on: channel)
                case .failure: record(index: index, started: started, ok: false)
                }
            }
        }
    }

    private func connect(_ done: @escaping (Result<any Channel, any Error>) -> Void) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        ClientBootstrap(group: eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler(driver: bound))
                }
            }
            .connect(to: address)
            .assumeIsolated()
            .whenComplete { [self] result in
                if case .success(let channel) = result { self.channel = channel }
                done(result)
            }
    }

    private func send(_ index: Int, started: NIODeadline, on channel: any Channel) {
        let request = plan.request(index)
        var headers = request.headers
        headers.replaceOrAdd(name: "Host", value: "\(plan.host):\(plan.port)")
        if let body = request.body { headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        let timeout = eventLoop.assumeIsolated().scheduleTask(in: plan.timeout) { channel.close(promise: nil) }
        inFlight = (index, started, timeout)
        channel.write(
            HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: request.method, uri: request.uri, headers: headers)),
            promise: nil)
        if let body = request.body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    /// A whole response arrived on `channel`.
    fileprivate func received(_ head: HTTPResponseHead, on channel: any Channel) {
        guard channel === self.channel, let flight = inFlight else { return }
        inFlight = nil
        flight.timeout.cancel()
        if !head.isKeepAlive {
            self.channel = nil
            channel.close(promise: nil)
        }
        record(
            index: flight.index, started: flight.started,
            ok: plan.check(flight.index, BenchResponse(status: Int(head.status.code), headers: head.headers)))
    }

    /// `channel` closed: a request still waiting on it failed.
    fileprivate func closed(_ channel: any Channel) {
        guard channel === self.channel else { return }
        self.channel = nil
        guard let flight = inFlight else { return }
        inFlight = nil
        flight.timeout.cancel()
        record(index: flight.index, started: flight.started, ok: false)
    }

    private func record(index: Int, started: NIODeadline, ok: Bool) {
        latencies.append(Double((NIODeadline.now() - started).nanoseconds) / 1e6)
        if !ok { errors += 1 }
        sendNext()
    }
}

/// Hands each whole response (and each closed connection) to its driver.
private final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let driver: NIOLoopBound<ConnectionDriver>
    private var head: HTTPResponseHead?

    init(driver: NIOLoopBound<ConnectionDriver>) { self.driver = driver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            driver.value.received(head, on: context.channel)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        driver.value.closed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
