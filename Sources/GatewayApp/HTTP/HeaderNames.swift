import HTTPTypes

/// Header names the standard set lacks, made once (making one checks every byte of the name).
extension HTTPField.Name {
    static let contentSecurityPolicy = HTTPField.Name("Content-Security-Policy")!
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let secFetchDest = HTTPField.Name("Sec-Fetch-Dest")!
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
    static let xRequestID = HTTPField.Name("X-Request-Id")!
}
