// Who is streaming and how the relay asks whether they may: the identity TokenReview returns and
// the two questions asked of the API server (an adapter in production: kube/auth.ts).

export interface RelayUser {
  username: string
  uid?: string
  groups: string[]
  extra?: Record<string, string[]> // TokenReview extras, passed on to SubjectAccessReview
}

export interface RelayAuth {
  // TokenReview: who presents this token (null: not authenticated).
  authenticate(token: string): Promise<RelayUser | null>
  // SubjectAccessReview: may this user `get` the LogTap namespace/name?
  mayGetTap(user: RelayUser, namespace: string, name: string): Promise<boolean>
}
