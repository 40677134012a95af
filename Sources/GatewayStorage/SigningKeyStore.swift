import Foundation
import LTICore

/// Where the tool's signing keys live (SPEC "Key rotation").
///
/// Single-instance mode keeps them in files (``FileSigningKeyStore``); a shared database keeps them
/// for every instance, private keys encrypted at rest. Every backend passes `SigningKeyStoreConformance`.
public protocol SigningKeyStore: Sendable {
    /// The stored ring (empty when nothing was ever stored).
    func loadKeyRing() async throws -> ToolKeyRing
    /// Reads the ring, applies `change` and stores the result, exclusively against every other writer
    /// (other processes and instances too). Returns the stored ring.
    func updateKeyRing(_ change: @Sendable (ToolKeyRing) throws -> ToolKeyRing) async throws -> ToolKeyRing
    /// A value that changes whenever the stored ring changes; cheap to read (polled by running servers).
    func keyRingRevision() async throws -> Int
}
