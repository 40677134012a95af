import Foundation
import Hummingbird
import NIOCore

/// `application/x-www-form-urlencoded` parameters of a query string or a form body.
enum FormParameters {
    /// Parses `a=1&b=two+words`; later duplicates are ignored.
    static func parse(_ text: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in pairs(text) where result[name] == nil { result[name] = value }
        return result
    }

    /// Every `name=value` pair in order, repeated names included (e.g. several checked boxes).
    static func pairs(_ text: Substring) -> [(String, String)] {
        var text = text
        return text.withUTF8(pairs(bytes:))
    }

    /// The pairs of valid UTF-8 text, read byte by byte: `&` and `=` are ASCII, so every piece between them is valid
    /// UTF-8 too.
    private static func pairs(bytes: UnsafeBufferPointer<UInt8>) -> [(String, String)] {
        var result: [(String, String)] = []
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "&") { end += 1 }
            var equals = start
            while equals < end, bytes[equals] != UInt8(ascii: "=") { equals += 1 }
            if end > start, let name = decode(bytes: UnsafeBufferPointer(rebasing: bytes[start..<equals])), !name.isEmpty {
                if equals == end {
                    result.append((name, ""))
                } else if let value = decode(bytes: UnsafeBufferPointer(rebasing: bytes[(equals + 1)..<end])) {
                    result.append((name, value))  // a malformed value is dropped, not guessed
                }
            }
            start = end + 1
        }
        return result
    }

    /// `+` → space and `%XX` → byte; nil for a malformed escape or bytes that are not UTF-8.
    static func decode(_ text: Substring) -> String? {
        var text = text
        return text.withUTF8(decode(bytes:))
    }

    private static func decode(bytes text: UnsafeBufferPointer<UInt8>) -> String? {
        // Most values (tokens, states, ids) have nothing to decode.
        if !text.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) { return String(decoding: text, as: UTF8.self) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(text.count)
        var iterator = text.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The parameters of a GET query, or of a form POST body of at most `limit` bytes.
    ///
    /// A POST's query string is ignored: what a POST carries (an `id_token`, a `state`, a picker's choice) belongs in
    /// its body, where it stays out of access logs and browser history, and a value in the URL cannot stand in for it.
    static func of(_ request: Request, limit: Int = FormLimit.small) async throws -> [String: String] {
        guard request.method == .post else { return parse(Substring(request.uri.query ?? "")) }
        return parse(Substring(try await body(of: request, limit: limit)))
    }

    /// The form body of a POST, as text, refused (413, connection closed) past `limit` bytes: at once when its
    /// `Content-Length` says so, otherwise as soon as that many bytes have arrived.
    static func body(of request: Request, limit: Int = FormLimit.small) async throws -> String {
        let tooLarge = GatewayError(
            code: .requestTooLarge, status: .contentTooLarge, title: "Request too large",
            message: "The request is larger than this gateway accepts (\(limit / 1024) KiB).")
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit { throw tooLarge }
        do {
            return String(buffer: try await request.body.collect(upTo: limit))
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
    }
}

/// The largest form body each kind of POST may carry.
enum FormLimit {
    /// Login, cookie check, restart, lab-session actions: a few hints, ids and a token of the gateway's own.
    static let small = 16 * 1024
    /// A picker submission: the chosen lab ids.
    static let picker = 64 * 1024

    /// A launch: the id_token (at most `GATEWAY_MAX_TOKEN_BYTES`, URL-safe, so not expanded by form encoding),
    /// its state and a storage secret.
    static func launch(maxTokenBytes: Int) -> Int { maxTokenBytes + 8 * 1024 }
}
