import Foundation
import LTICore

#if canImport(Glibc)
import Glibc
#endif

/// Signing keys as files: `<folder>/<kid>.pem` (mode 0600) and the metadata `<folder>/keyring.json`.
///
/// Writers take an exclusive `flock` on `<folder>/.lock`, so a `keys rotate` from the command line and
/// a running server never interleave. New key files are written before the metadata that names them, and
/// the metadata is replaced by an atomic rename: a crash leaves at worst an unreferenced key file.
/// Any key file readable by group or others is refused, and so is a folder another user owns or may write to
/// (they could swap the files). Temporary files are created exclusively and never through a symbolic link,
/// and the folder is synced after each rename, so a crash cannot lose a rename that was reported done.
public struct FileSigningKeyStore: SigningKeyStore {
    public let folder: String

    public init(folder: String) {
        self.folder = folder
    }

    struct Metadata: Codable {
        struct Entry: Codable {
            var kid: String
            var state: ToolKey.State
            var createdAt: Date
            var activatedAt: Date?
            var retiresAt: Date?
            enum CodingKeys: String, CodingKey {
                case kid, state, createdAt = "created_at", activatedAt = "activated_at", retiresAt = "retires_at"
            }
        }
        var revision: Int
        var keys: [Entry]
    }

    var metadataPath: String { folder + "/keyring.json" }
    func keyPath(_ kid: String) -> String { folder + "/" + kid + ".pem" }

    public func loadKeyRing() async throws -> ToolKeyRing {
        try loadRing(readMetadata())
    }

    public func keyRingRevision() async throws -> Int {
        try readMetadata().revision
    }

    public func updateKeyRing(_ change: @Sendable (ToolKeyRing) throws -> ToolKeyRing) async throws -> ToolKeyRing {
        try prepareFolder()
        let lock = try await acquireLock()
        defer { close(lock) }
        let metadata = try readMetadata()
        let current = try loadRing(metadata)
        let updated = try change(current)
        for key in updated.keys where !FileManager.default.fileExists(atPath: keyPath(key.kid)) {
            try writeAtomically(Data(key.privateKeyPEM.utf8), to: keyPath(key.kid))
        }
        let entries = updated.keys.map {
            Metadata.Entry(kid: $0.kid, state: $0.state, createdAt: $0.createdAt, activatedAt: $0.activatedAt, retiresAt: $0.retiresAt)
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(Metadata(revision: metadata.revision + 1, keys: entries)), to: metadataPath)
        let kept = Set(updated.keys.map(\.kid))
        for key in current.keys where !kept.contains(key.kid) {
            try? FileManager.default.removeItem(atPath: keyPath(key.kid))
        }
        return updated
    }

    // MARK: files

    /// The ring's metadata; only a file that does not exist means a new, empty ring. Any other failure to read it
    /// (permissions, a directory in its place, no descriptors left) is an error: treating it as empty would replace
    /// the signing keys the LMSs trust.
    private func readMetadata() throws -> Metadata {
        guard let data = try readFile(metadataPath) else { return Metadata(revision: 0, keys: []) }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(Metadata.self, from: data)
        } catch {
            throw StorageError(.corrupt, "\(metadataPath) is not a key ring metadata file", underlying: error)
        }
    }

    private func loadRing(_ metadata: Metadata) throws -> ToolKeyRing {
        if !metadata.keys.isEmpty { try checkFolder() }
        var keys: [ToolKey] = []
        // Every key file others may read, so that one error (and one chmod) fixes them all.
        var exposed: [(path: String, mode: Int)] = []
        for entry in metadata.keys {
            let path = keyPath(entry.kid)
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            guard let mode = (attributes?[.posixPermissions] as? NSNumber)?.intValue,
                let data = try readFile(path), let pem = String(data: data, encoding: .utf8)
            else {
                throw StorageError(.corrupt, "the signing key file \(path) named in \(metadataPath) cannot be read")
            }
            guard mode & 0o077 == 0 else {
                exposed.append((path, mode))
                continue
            }
            do {
                keys.append(
                    try ToolKey(
                        kid: entry.kid, state: entry.state, createdAt: entry.createdAt, activatedAt: entry.activatedAt,
                        retiresAt: entry.retiresAt, privateKeyPEM: pem))
            } catch {
                throw StorageError(.corrupt, "the signing key file \(path) does not hold the RSA key \(entry.kid)", underlying: error)
            }
        }
        guard exposed.isEmpty else {
            let files = exposed.map { "\($0.path) (mode \(String($0.mode & 0o777, radix: 8)))" }.joined(separator: ", ")
            throw StorageError(
                .insecure,
                "\(exposed.count == 1 ? "the signing key" : "the signing keys") \(files) \(exposed.count == 1 ? "is" : "are") readable by other users; "
                    + "run: chmod 600 \(exposed.map(\.path).joined(separator: " "))")
        }
        return ToolKeyRing(keys: keys)
    }

    /// The contents of `path`, nil when it does not exist; ``StorageError`` `.unavailable` naming the cause when it
    /// exists but cannot be read. Never follows a symbolic link.
    private func readFile(_ path: String) throws -> Data? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            let cause = errno
            if cause == ENOENT { return nil }
            throw StorageError(.unavailable, "cannot read \(path): \(String(cString: strerror(cause)))")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            return try handle.readToEnd() ?? Data()
        } catch {
            throw StorageError(.unavailable, "cannot read \(path)", underlying: error)
        }
    }

    private func prepareFolder() throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StorageError(.invalidLocation, "cannot create the keys folder \(folder)", underlying: error)
        }
    }

    /// Refuses a keys folder that another user owns or that group or others may write to.
    private func checkFolder() throws {
        var info = stat()
        guard lstat(folder, &info) == 0 else { throw StorageError(.invalidLocation, "cannot read the keys folder \(folder) (errno \(errno))") }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw StorageError(.insecure, "the keys folder \(folder) is not a directory (a symbolic link?)")
        }
        guard info.st_uid == geteuid() else {
            throw StorageError(.insecure, "the keys folder \(folder) belongs to another user (uid \(info.st_uid)); it must be this user's")
        }
        guard info.st_mode & 0o022 == 0 else {
            throw StorageError(
                .insecure,
                "the keys folder \(folder) may be written by other users (mode \(String(info.st_mode & 0o777, radix: 8))); run: chmod 700 \(folder)")
        }
    }

    /// Writes a 0600 file next to `path` (created exclusively, never through a symbolic link), flushes it, renames it
    /// into place and syncs the folder.
    private func writeAtomically(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp-\(getpid())-" + SecureRandom.token(byteCount: 8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StorageError(.invalidLocation, "cannot write \(temporary) (errno \(errno))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw StorageError(.invalidLocation, "cannot write \(path) (errno \(errno))")
        }
        let directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw StorageError(.invalidLocation, "cannot open the keys folder \(folder) (errno \(errno))") }
        defer { close(directory) }
        guard fsync(directory) == 0 else { throw StorageError(.invalidLocation, "cannot sync the keys folder \(folder) (errno \(errno))") }
    }

    /// An exclusive lock on `<folder>/.lock`, waited for without blocking a thread.
    private func acquireLock() async throws -> Int32 {
        let fd = open(folder + "/.lock", O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else { throw StorageError(.invalidLocation, "cannot open \(folder)/.lock (errno \(errno))") }
        let deadline = ContinuousClock.now + .seconds(30)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard ContinuousClock.now < deadline else {
                close(fd)
                throw StorageError(.unavailable, "another process holds the key ring lock \(folder)/.lock")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return fd
    }
}
