import Foundation
import GatewaySupport
import NIOCore
import NIOPosix

/// A TCP connection that writes exactly the bytes a test gives it — partial heads, stalled bodies, broken chunked
/// encodings — and reads whatever comes back until the server closes it or a deadline passes.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let received: AsyncThrowingStream<ByteBuffer, any Error>

    private init(channel: any Channel, received: AsyncThrowingStream<ByteBuffer, any Error>) {
        self.channel = channel
        self.received = received
    }

    static func open(port: Int) async throws -> RawConnection {
        let (received, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(continuation: continuation))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    /// Hands every received chunk to the stream, and ends it when the server closes (or resets) the connection.
    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
        init(continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation) { self.continuation = continuation }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { continuation.yield(unwrapInboundIn(data)) }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event { continuation.finish() }
            context.fireUserInboundEventTriggered(event)
        }
        func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { continuation.finish() }
    }

    func send(_ text: String) async throws { try await send(ByteBuffer(string: text)) }

    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes)
    }

    /// Everything the server sends until it closes the connection; throws `DeadlineExceeded` if it is still open at `deadline`.
    func readUntilClosed(within deadline: Duration) async throws -> String {
        try await withDeadline(deadline) { [received] in
            var text = ""
            do {
                for try await chunk in received { text += String(buffer: chunk) }
            } catch {
                // A reset is a close too.
            }
            return text
        }
    }

    /// Reads until what arrived contains `marker`; throws `DeadlineExceeded` past `deadline`.
    func read(until marker: String, within deadline: Duration) async throws -> String {
        try await withDeadline(deadline) { [received] in
            var text = ""
            for try await chunk in received {
                text += String(buffer: chunk)
                if text.contains(marker) { break }
            }
            return text
        }
    }

    var isOpen: Bool { channel.isActive }

    func close() async {
        try? await channel.close()
    }

}
