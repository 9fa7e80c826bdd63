# Test stub: GRAM errors as objects carrying their name.
package Globus::GRAM::Error;
use strict;
use warnings;
our $AUTOLOAD;
sub AUTOLOAD {
    my $name = $AUTOLOAD;
    $name =~ s/.*:://;
    return if $name eq 'DESTROY';
    return bless { name => $name }, 'Globus::GRAM::Error';
}
sub name { $_[0]->{name} }
1;
