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
        text.split(separator: "&", omittingEmptySubsequences: true).compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]), !name.isEmpty else { return nil }
            return (name, parts.count > 1 ? (decode(parts[1]) ?? "") : "")
        }
    }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// The parameters of a GET query, or of a form POST body (read up to the context's upload limit).
    static func of(_ request: Request, context: some RequestContext) async throws -> [String: String] {
        var parameters = parse(Substring(request.uri.query ?? ""))
        if request.method == .post {
            for (name, value) in parse(Substring(try await body(of: request, context: context))) { parameters[name] = value }
        }
        return parameters
    }

    /// The form body of a POST, as text, refused past the upload limit.
    static func body(of request: Request, context: some RequestContext) async throws -> String {
        do {
            return String(buffer: try await request.body.collect(upTo: context.maxUploadSize))
        } catch is NIOTooManyBytesError {
            throw GatewayError(code: "request_too_large", status: .contentTooLarge, title: "Request too large",
                               message: "The request is larger than this gateway accepts (\(context.maxUploadSize / 1024) KiB).")
        }
    }
}
