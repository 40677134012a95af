import Logging
import NIOPosix
import SQLiteNIO
import Synchronization

/// Copies the write-ahead log back into the database file in the background, off the request path.
///
/// SQLite's automatic checkpoint runs inside whichever commit crosses the threshold and, with
/// `synchronous = NORMAL`, syncs both files there: under load every few dozen launches waited for two
/// `fsync`s on the connection all statements share. This checkpointer does the same work on a connection
/// and a thread of its own, in `PASSIVE` mode (it never blocks a writer or a reader), within ``interval``
/// of the store's writes (``noteWrite()``) and not at all while it writes nothing, for as long as ``run()`` runs
/// (the store's own ``SQLiteGatewayStore/run()``). The request connections keep automatic checkpoints only as a backstop at ``backstopPages``,
/// should this one fall behind.
final class WALCheckpointer: Sendable {
    /// How soon after a write the log is checkpointed (small checkpoints keep each one short).
    static let interval: Duration = .milliseconds(50)
    /// The request connections' own checkpoint threshold (pages of 4 KiB): 64 MiB of log.
    static let backstopPages = 16_384
    /// The size the log file is cut back to after a checkpoint has emptied it.
    static let logSizeLimitBytes = 64 << 20

    private let connection: SQLiteConnection
    private let threadPool: NIOThreadPool
    private let written = WriteFlag()
    private let logger: Logger

    private init(connection: SQLiteConnection, threadPool: NIOThreadPool, logger: Logger) {
        self.connection = connection
        self.threadPool = threadPool
        self.logger = logger
    }

    /// Checkpoints within ``interval`` of each run of writes, until cancelled.
    func run() async {
        var failing = false
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.interval)
            guard !Task.isCancelled else { break }
            guard written.take() else { continue }
            do {
                _ = try await connection.query("PRAGMA wal_checkpoint(PASSIVE)", [])
                failing = false
            } catch {
                // Logged once per run of failures; the backstop keeps the log bounded meanwhile.
                if !failing { logger.warning("SQLite checkpoint failed", metadata: ["error": "\(String(reflecting: error))"]) }
                failing = true
            }
        }
    }

    /// Opens the checkpointer's own connection to the database at `path` (already in WAL mode).
    static func start(path: String, logger: Logger) async throws -> WALCheckpointer {
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        do {
            let connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: threadPool, logger: logger,
                on: MultiThreadedEventLoopGroup.singleton.any())
            _ = try await connection.query("PRAGMA busy_timeout = 1000", [])
            return WALCheckpointer(connection: connection, threadPool: threadPool, logger: logger)
        } catch {
            try? await threadPool.shutdownGracefully()
            throw error
        }
    }

    /// Records that the store has committed a write: the next round checkpoints.
    func noteWrite() {
        written.set()
    }

    /// Closes the connection (after ``run()`` has ended).
    func stop() async {
        try? await connection.close()
        try? await threadPool.shutdownGracefully()
    }
}

/// Whether the store has written since the checkpointer last looked.
private final class WriteFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    /// True once per run of writes.
    func take() -> Bool { value.exchange(false, ordering: .acquiringAndReleasing) }
}
