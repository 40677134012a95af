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
        // Split on bytes: splitting the characters would run grapheme breaking over every token.
        text.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true).compactMap { pair in
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(Substring(parts[0])), !name.isEmpty else { return nil }
            guard parts.count > 1 else { return (name, "") }
            guard let value = decode(Substring(parts[1])) else { return nil }  // a malformed value is dropped, not guessed
            return (name, value)
        }
    }

    /// `+` → space and `%XX` → byte; nil for a malformed escape or bytes that are not UTF-8.
    static func decode(_ text: Substring) -> String? {
        // Most values (tokens, states, ids) have nothing to decode.
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) { return String(text) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
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
