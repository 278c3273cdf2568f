# opd as a Nix package: `pkgs.callPackage ./nix/package.nix { }`.
# The npm dependencies come from package-lock.json through nixpkgs' importNpmLock (each package
# fetched by the integrity hash the lock records), so there is no npmDepsHash to keep current.
{ lib, buildNpmPackage, importNpmLock, nodejs_20, makeWrapper, systemd }:

buildNpmPackage {
  pname = "opd";
  version = (lib.importJSON ../package.json).version;
  src = lib.cleanSourceWith {
    src = lib.cleanSource ./..;
    filter = path: type: !(builtins.elem (baseNameOf path) [ "node_modules" "dist" "result" ]);
  };
  nodejs = nodejs_20;
  npmDeps = importNpmLock { npmRoot = ./..; };
  npmConfigHook = importNpmLock.npmConfigHook;
  nativeBuildInputs = [ makeWrapper ];
  # tsc → dist/ and the precompiled validator (the `build` script); the integration tests need
  # real backends: not run here
  npmBuildScript = "build";
  doCheck = false;

  postInstall = ''
    install -Dm644 packaging/systemd/opd.service $out/lib/systemd/system/opd.service
    substituteInPlace $out/lib/systemd/system/opd.service --replace-fail /usr/bin/opd $out/bin/opd
    install -Dm644 packaging/systemd/opd-boot.service $out/lib/systemd/system/opd-boot.service
    substituteInPlace $out/lib/systemd/system/opd-boot.service --replace-fail /usr/bin/opd $out/bin/opd
    install -Dm644 packaging/dbus/org.opd.Reconciler1.conf $out/share/dbus-1/system.d/org.opd.Reconciler1.conf
    install -Dm644 packaging/polkit/org.opd.reconciler1.policy $out/share/polkit-1/actions/org.opd.reconciler1.policy
    # the daemon's sd_notify goes through systemd-notify
    wrapProgram $out/bin/opd --prefix PATH : ${lib.makeBinPath [ systemd ]}
  '';

  meta = {
    description = "Declarative desired-state reconciler for Linux virtualization hosts";
    license = lib.licenses.mit;
    mainProgram = "opd";
    platforms = lib.platforms.linux;
  };
}
