import Foundation
import Hummingbird
import NIOCore

/// `application/x-www-form-urlencoded` parameters of a query string or a form body.
enum FormParameters {
    /// Parses `a=1&b=two+words`; later duplicates are ignored.
    static func parse(_ text: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]), !name.isEmpty, result[name] == nil else { continue }
            result[name] = parts.count > 1 ? (decode(parts[1]) ?? "") : ""
        }
        return result
    }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// The parameters of a GET query, or of a form POST body (read up to the context's upload limit).
    static func of(_ request: Request, context: some RequestContext) async throws -> [String: String] {
        var parameters = parse(Substring(request.uri.query ?? ""))
        if request.method == .post {
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: context.maxUploadSize)
            } catch is NIOTooManyBytesError {
                throw GatewayError(code: "request_too_large", status: .contentTooLarge, title: "Request too large",
                                   message: "The request is larger than this gateway accepts (\(context.maxUploadSize / 1024) KiB).")
            }
            for (name, value) in parse(Substring(String(buffer: body))) { parameters[name] = value }
        }
        return parameters
    }
}
