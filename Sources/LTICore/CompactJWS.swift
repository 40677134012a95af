import Foundation

/// A compact-serialised JWS split into its parts, with its protected header decoded.
///
/// Parsing never trusts the header: ``LaunchValidator`` decides which algorithm and key are acceptable.
/// `jku`, `x5u` and embedded `jwk` header members are recorded only so they can be logged as ignored
/// (checklist "Launch" rule 2).
public struct CompactJWS: Sendable {
    public struct Header: Sendable, Decodable {
        public var alg: String?
        public var kid: String?
        public var typ: String?
        public var jku: String?
        public var x5u: String?
        public var jwk: IgnoredValue?
        /// Extensions the signer says must be understood (RFC 7515 §4.1.11); the gateway understands none.
        public var crit: IgnoredValue?
        /// Present only to notice that a header carried the member; its value is never used.
        public struct IgnoredValue: Sendable, Decodable {
            public init(from decoder: any Decoder) throws {}
        }
        /// True when the header names a key location or embeds a key, all of which are ignored.
        public var referencesOutsideKey: Bool { jku != nil || x5u != nil || jwk != nil }
    }

    public let header: Header
    /// The bytes the signature covers: `base64url(header) "." base64url(payload)`.
    public let signingInput: [UInt8]
    public let payload: Data
    public let signature: Data

    /// Splits and decodes `token`. Throws ``LaunchRefusal`` with `.tokenMalformed` on any deviation.
    public init(_ token: String) throws {
        // Exactly two dots, found without splitting the token into arrays (a launch's token is a kilobyte or more).
        let bytes = token.utf8
        let dot = UInt8(ascii: ".")
        guard let firstDot = bytes.firstIndex(of: dot), let secondDot = bytes[bytes.index(after: firstDot)...].firstIndex(of: dot),
            !bytes[bytes.index(after: secondDot)...].contains(dot)
        else {
            throw LaunchRefusal(.tokenMalformed, "The launch token is not a signed JWT in compact form.", rule: "Launch 2")
        }
        let parts = [bytes[..<firstDot], bytes[bytes.index(after: firstDot)..<secondDot], bytes[bytes.index(after: secondDot)...]]
        guard !parts[0].isEmpty, !parts[1].isEmpty else {
            throw LaunchRefusal(.tokenMalformed, "The launch token is not a signed JWT in compact form.", rule: "Launch 2")
        }
        guard let headerBytes = Base64URL.decode(parts[0]),
            let payloadBytes = Base64URL.decode(parts[1]),
            let signatureBytes = Base64URL.decode(parts[2])
        else {
            throw LaunchRefusal(.tokenMalformed, "The launch token is not valid base64url.", rule: "Launch 2")
        }
        guard let header = try? JSONDecoder().decode(Header.self, from: headerBytes) else {
            throw LaunchRefusal(.tokenMalformed, "The launch token's header is not a JSON object.", rule: "Launch 2")
        }
        self.header = header
        self.payload = payloadBytes
        self.signature = signatureBytes
        var input = [UInt8]()
        input.reserveCapacity(parts[0].count + parts[1].count + 1)
        input.append(contentsOf: parts[0])
        input.append(UInt8(ascii: "."))
        input.append(contentsOf: parts[1])
        self.signingInput = input
    }
}

/// base64url without padding (RFC 7515 §2).
public enum Base64URL {
    /// Decodes unpadded base64url; nil for any byte outside the alphabet (padding and the `+`/`/` of
    /// standard base64 included) or an impossible length.
    public static func decode(_ bytes: some Collection<UInt8>) -> Data? {
        if let decoded = bytes.withContiguousStorageIfAvailable(decode(buffer:)) { return decoded }
        return Array(bytes).withUnsafeBufferPointer(decode(buffer:))
    }

    private static func decode(buffer input: UnsafeBufferPointer<UInt8>) -> Data? {
        guard input.count % 4 != 1 else { return nil }
        let table = decodingTable
        var valid = true
        let output = [UInt8](unsafeUninitializedCapacity: input.count * 3 / 4) { out, written in
            var accumulator: UInt32 = 0
            var bits: UInt32 = 0
            var count = 0
            for byte in input {
                let value = table[Int(byte)]
                guard value != invalid else { valid = false; break }
                accumulator = accumulator << 6 | UInt32(value)
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    out[count] = UInt8(truncatingIfNeeded: accumulator >> bits)
                    count += 1
                }
            }
            written = count
        }
        return valid ? Data(output) : nil
    }

    private static let invalid: UInt8 = 0xFF
    /// Each byte's 6-bit value in the base64url alphabet (RFC 4648 §5), or ``invalid``.
    private static let decodingTable: [UInt8] = {
        var table = [UInt8](repeating: invalid, count: 256)
        for (value, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8.enumerated() {
            table[Int(byte)] = UInt8(value)
        }
        return table
    }()

    public static func decode(_ string: String) -> Data? { decode(string.utf8) }

    public static func encode(_ data: some Sequence<UInt8>) -> String {
        let standard = Data(data).base64EncodedData()
        var out = [UInt8]()
        out.reserveCapacity(standard.count)
        for byte in standard {
            switch byte {
            case UInt8(ascii: "+"): out.append(UInt8(ascii: "-"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "_"))
            case UInt8(ascii: "="): continue
            default: out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
