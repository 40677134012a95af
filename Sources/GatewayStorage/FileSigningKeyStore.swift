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
/// Any key file readable by group or others is refused.
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

    private func readMetadata() throws -> Metadata {
        guard let data = FileManager.default.contents(atPath: metadataPath) else { return Metadata(revision: 0, keys: []) }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(Metadata.self, from: data)
        } catch {
            throw StorageError(.corrupt, "\(metadataPath) is not a key ring metadata file", underlying: error)
        }
    }

    private func loadRing(_ metadata: Metadata) throws -> ToolKeyRing {
        var keys: [ToolKey] = []
        for entry in metadata.keys {
            let path = keyPath(entry.kid)
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            guard let mode = (attributes?[.posixPermissions] as? NSNumber)?.intValue,
                let data = FileManager.default.contents(atPath: path), let pem = String(data: data, encoding: .utf8)
            else {
                throw StorageError(.corrupt, "the signing key file \(path) named in \(metadataPath) cannot be read")
            }
            guard mode & 0o077 == 0 else {
                throw StorageError(
                    .insecure, "the signing key \(path) is readable by other users (mode \(String(mode, radix: 8))); run: chmod 600 \(path)")
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
        return ToolKeyRing(keys: keys)
    }

    private func prepareFolder() throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StorageError(.invalidLocation, "cannot create the keys folder \(folder)", underlying: error)
        }
    }

    /// Writes a 0600 file next to `path`, flushes it, and renames it into place.
    private func writeAtomically(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw StorageError(.invalidLocation, "cannot write \(temporary) (errno \(errno))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw StorageError(.invalidLocation, "cannot write \(path) (errno \(errno))")
        }
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
